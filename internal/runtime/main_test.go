package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// shimBinary is the berth-shim built for this test binary by TestMain; empty
// when the tests cannot run privileged (they skip then).
var shimBinary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "berth-shim-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "berth-shim")
		// Static, as the Makefile builds it: a cgo build maps libc too.
		cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/berth-dev/berth/cmd/berth-shim")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build berth-shim: %v\n%s", err, out)
			return 1
		}
		shimBinary = bin
	}
	return m.Run()
}
