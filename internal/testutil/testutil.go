// Package testutil holds helpers shared by berth's tests: the gate for
// privileged tests and checks for required binaries. It is imported only by
// _test.go files.
package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// EnvPrivileged is the environment variable that turns a missing prerequisite
// of a privileged test into a failure instead of a skip.
const EnvPrivileged = "BERTH_TEST_PRIVILEGED"

// Privileged reports whether privileged tests are demanded (BERTH_TEST_PRIVILEGED=1).
func Privileged() bool { return os.Getenv(EnvPrivileged) == "1" }

// RequirePrivileged skips t unless it runs as root; with
// BERTH_TEST_PRIVILEGED=1 it fails instead of skipping.
func RequirePrivileged(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		unmet(t, "test needs root (euid 0)")
	}
}

// RequireBinary returns the path of the named program, skipping t (or failing
// it under BERTH_TEST_PRIVILEGED=1) when it is not on PATH.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		unmet(t, "test needs "+name+" on PATH")
	}
	return p
}

func unmet(t testing.TB, why string) {
	t.Helper()
	if Privileged() {
		t.Fatalf("%s (prerequisite missing while %s=1)", why, EnvPrivileged)
	}
	t.Skip(why)
}
