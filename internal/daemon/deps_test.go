package daemon

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/berth-dev/berth/"

// forbidden lists, per package, berth packages it must not depend on,
// directly or not (STYLE.md §3: imports point down only).
var forbidden = map[string][]string{
	"internal/errdefs":       {"internal/", "api/"},
	"internal/log":           {"internal/", "api/"},
	"internal/filters":       {"internal/metadata", "internal/server", "internal/daemon", "api/"},
	"internal/labels":        {"internal/metadata", "internal/server", "internal/daemon", "api/"},
	"internal/gc":            {"internal/", "api/"},
	"internal/events":        {"internal/metadata", "internal/server", "internal/daemon", "api/"},
	"internal/content":       {"internal/metadata", "internal/server", "internal/daemon", "api/"},
	"internal/content/local": {"internal/metadata", "internal/server", "internal/daemon", "api/"},
	"internal/diff":          {"internal/metadata", "internal/server", "internal/daemon", "internal/content", "internal/snapshots", "internal/images", "api/"},
	"internal/mount":         {"internal/metadata", "internal/server", "internal/daemon", "internal/content", "api/"},
	"internal/snapshots/...": {"internal/metadata", "internal/server", "internal/daemon", "internal/content", "api/"},
	"internal/remote":        {"internal/metadata", "internal/server", "internal/daemon", "internal/content", "internal/snapshots", "api/"},
	"internal/metadata":      {"internal/server", "internal/daemon", "api/", "client"},
	"internal/server":        {"internal/daemon", "client"},
	"client":                 {"internal/metadata", "internal/server", "internal/daemon", "internal/content"},
	"cmd/berth":              {"internal/metadata", "internal/server", "internal/daemon", "internal/content"},
}

func TestDependencyDirection(t *testing.T) {
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", module+pkg).Output()
		// "pkg/..." checks every package below pkg together.
		pkg = strings.TrimSuffix(pkg, "/...")
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			rel, ok := strings.CutPrefix(dep, module)
			if !ok || rel == pkg || strings.HasPrefix(rel, pkg+"/") {
				continue
			}
			for _, b := range bad {
				if strings.HasPrefix(rel, b) && !allowed(pkg, rel) {
					t.Errorf("%s depends on %s", pkg, rel)
				}
			}
		}
	}
}

// allowed lists the leaf packages every layer may use.
func allowed(pkg, dep string) bool {
	switch dep {
	case "internal/errdefs", "internal/log":
		return pkg != "internal/errdefs" && pkg != "internal/log" && pkg != "internal/gc"
	}
	return false
}
