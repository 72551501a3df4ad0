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
	"internal/cgroups":       {"internal/", "api/"},
	"internal/keylock":       {"internal/", "api/"},
	"internal/logs":          {"internal/metadata", "internal/server", "internal/daemon", "internal/runtime", "api/"},
	"internal/oci":           {"internal/metadata", "internal/server", "internal/daemon", "internal/runtime", "internal/content", "api/"},
	"internal/network":       {"internal/metadata", "internal/server", "internal/daemon", "internal/runtime", "internal/content", "api/"},
	"internal/runtime":       {"internal/metadata", "internal/server", "internal/daemon", "internal/content", "internal/images", "internal/containers", "client", "api/containers", "api/tasks", "api/images", "api/events"},
	"internal/archive":       {"internal/metadata", "internal/server", "internal/daemon", "internal/content", "internal/snapshots", "internal/images", "api/"},
	"internal/transfer":      {"internal/metadata", "internal/server", "internal/daemon", "internal/content", "internal/snapshots", "internal/images", "api/"},
	"internal/containers":    {"internal/server", "internal/daemon", "client", "api/containers", "api/tasks", "api/images", "api/events"},
	// The shim's memory is a headline figure: it may use only the shim API,
	// cgroups and the leaf packages (STYLE.md §3).
	"cmd/berth-shim": {"internal/metadata", "internal/server", "internal/daemon", "internal/runtime", "internal/content", "internal/images",
		"internal/containers", "internal/snapshots", "internal/remote", "internal/network", "internal/oci", "internal/diff", "client",
		"api/content", "api/containers", "api/tasks", "api/images", "api/events", "api/snapshots"},
	"internal/server": {"internal/daemon", "client"},
	"client":          {"internal/metadata", "internal/server", "internal/daemon", "internal/content"},
	"cmd/berth":       {"internal/metadata", "internal/server", "internal/daemon", "internal/content"},
}

// TestShimStaysLean keeps gRPC, protobuf and the daemon's error kinds (which
// pull them in) out of berth-shim: every byte of code it maps is paid once
// per running container.
func TestShimStaysLean(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", module+"cmd/berth-shim").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"google.golang.org/grpc", "google.golang.org/protobuf", module + "internal/errdefs", module + "internal/cgroups"} {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("berth-shim depends on %s", dep)
			}
		}
	}
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
