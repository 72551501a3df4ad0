// Package e2e holds berth's black-box tests: TestMain builds the binaries,
// each test starts berthd on a temporary root, state and socket, and drives
// it only through the berth CLI and the client package.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/internal/testutil"
)

// binDir holds the binaries built by TestMain.
var binDir string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		if testutil.Privileged() {
			fmt.Fprintln(os.Stderr, "e2e: must run as root (BERTH_TEST_PRIVILEGED=1 is set)")
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "e2e: skipped: needs root (set BERTH_TEST_PRIVILEGED=1 to fail instead)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "berth-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir+"/", "github.com/berth-dev/berth/cmd/berthd", "github.com/berth-dev/berth/cmd/berth", "github.com/berth-dev/berth/cmd/berth-shim")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // as `make build`: a static shim maps no libc
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build binaries:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is one berthd process under test.
type daemon struct {
	t                 *testing.T
	root, state, sock string
	config            string
	cmd               *exec.Cmd
	logs              *testutil.Buffer
	exited            chan struct{}
	exitErr           error
}

// newDaemon prepares (but does not start) a daemon with fresh directories.
func newDaemon(t *testing.T) *daemon {
	base := t.TempDir()
	return &daemon{t: t, root: filepath.Join(base, "root"), state: filepath.Join(base, "state"), sock: filepath.Join(base, "state", "berth.sock")}
}

// args are berthd's command-line arguments.
func (d *daemon) args() []string {
	args := []string{"--root", d.root, "--state", d.state, "--address", d.sock, "--log-level", "debug"}
	if d.config != "" {
		args = append(args, "--config", d.config)
	}
	return args
}

// start runs berthd and waits until its API answers.
func (d *daemon) start() {
	d.t.Helper()
	d.logs = &testutil.Buffer{}
	d.cmd = exec.Command(filepath.Join(binDir, "berthd"), d.args()...)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	restart := d.exited != nil
	d.exited = make(chan struct{})
	cmd, exited := d.cmd, d.exited
	go func() {
		d.exitErr = cmd.Wait()
		close(exited)
	}()
	if !restart { // one cleanup per daemon, run after the test's own
		d.t.Cleanup(d.cleanup)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := client.New(context.Background(), d.sock, client.WithDialTimeout(200*time.Millisecond))
		if err == nil {
			_, err = c.Server(context.Background())
			c.Close()
			if err == nil {
				return
			}
		}
		select {
		case <-d.exited:
			d.t.Fatalf("berthd exited during start-up (%v):\n%s", d.exitErr, d.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("berthd not answering after 20s: %v\n%s", err, d.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cleanup kills berthd if the test left it running and shows its logs if
// the test failed.
func (d *daemon) cleanup() {
	if d.cmd.ProcessState == nil {
		d.cmd.Process.Kill()
		<-d.exited
	}
	if d.t.Failed() {
		d.t.Logf("berthd logs:\n%s", d.logs.String())
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop() {
	d.t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		d.t.Fatalf("berthd did not stop within 20s of SIGTERM:\n%s", d.logs.String())
	}
	if d.exitErr != nil {
		d.t.Fatalf("berthd exited with %v after SIGTERM:\n%s", d.exitErr, d.logs.String())
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (d *daemon) kill() {
	d.t.Helper()
	d.cmd.Process.Kill()
	<-d.exited
}

// client connects to the daemon in namespace ns.
func (d *daemon) client(ns string) *client.Client {
	d.t.Helper()
	c, err := client.New(context.Background(), d.sock, client.WithNamespace(ns))
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { c.Close() })
	return c
}

// result is what one CLI run produced.
type result struct {
	stdout, stderr string
	code           int
}

// berth runs the CLI against d with args, feeding stdin if not nil.
func (d *daemon) berth(stdin []byte, args ...string) result {
	d.t.Helper()
	return runBerth(d.t, stdin, append([]string{"--address", d.sock}, args...)...)
}

func runBerth(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "berth"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Env = append(os.Environ(), "BERTH_NAMESPACE=", "BERTH_ADDRESS=")
	err := cmd.Run()
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// ok fails the test unless r exited 0, and returns its stdout.
func (r result) ok(t *testing.T) string {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("berth exited %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails checks r exited with code and its stderr contains want.
func (r result) fails(t *testing.T, code int, want string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stderr, want) {
		t.Errorf("want exit %d and stderr containing %q; got exit %d\nstdout: %s\nstderr: %s", code, want, r.code, r.stdout, r.stderr)
	}
}
