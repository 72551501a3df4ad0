package runtime

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/berth-dev/berth/internal/errdefs"
)

// minVersions are the oldest runtime releases berth drives: runc 1.1 (the
// cgroup and --preserve-fds behaviour it relies on), crun 1.4.
var minVersions = map[string][2]int{"runc": {1, 1}, "crun": {1, 4}}

var versionLine = regexp.MustCompile(`(?m)^(?:runc|crun) version (\d+)\.(\d+)`)

// CheckRuntime runs `PATH --version` and checks that the runtime called name
// is there and recent enough; it returns the version line.
func CheckRuntime(ctx context.Context, name, path string) (string, error) {
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("runtime %s: %s not found: install it (apt-get install %s) or set runtime.%s in the config: %w",
			name, path, name, name, errdefs.ErrFailedPrecondition)
	}
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("runtime %s: %s --version: %v", name, path, err)
	}
	m := versionLine.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("runtime %s: %s --version printed no version line: %q", name, path, out)
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	if want, ok := minVersions[name]; ok && (major < want[0] || major == want[0] && minor < want[1]) {
		return "", fmt.Errorf("runtime %s: %s is version %d.%d; berth needs %d.%d or later: %w",
			name, path, major, minor, want[0], want[1], errdefs.ErrFailedPrecondition)
	}
	return string(m[0]), nil
}

// FindShim returns the berth-shim binary: configured, else next to the
// running executable, else on PATH.
func FindShim(configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "berth-shim")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("berth-shim")
	if err != nil {
		return "", fmt.Errorf("berth-shim not found next to berthd nor on PATH: %w", errdefs.ErrFailedPrecondition)
	}
	return p, nil
}
