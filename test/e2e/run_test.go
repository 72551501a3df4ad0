package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestRunExitStatusAndSeparateStreams(t *testing.T) {
	d, ref := containerDaemon(t)
	r := d.berth(nil, "run", ref, "sh", "-c", "echo to-out; echo to-err >&2; exit 3")
	if r.code != 3 || r.stdout != "to-out\n" || r.stderr != "to-err\n" {
		t.Errorf("run: exit %d, stdout %q, stderr %q; want 3, to-out, to-err", r.code, r.stdout, r.stderr)
	}
	if r := d.berth(nil, "run", ref, "true"); r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("run true: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// Killed by a signal: 128+N.
	cmd, _, stderr := d.berthProcess(t, "run", "--name", "victim", ref, "sleep", "300")
	d.waitStatus(t, "victim", client.StatusRunning)
	d.berth(nil, "kill", "victim").ok(t)
	if code := exitCodeOf(t, cmd); code != 137 {
		t.Errorf("run of a SIGKILLed container: exit %d, want 137; stderr %q", code, stderr.String())
	}
	// The image's Cmd is the default command; --entrypoint replaces it.
	if out := d.berth(nil, "run", "--entrypoint", "/bin/echo", ref, "from", "entrypoint").ok(t); out != "from entrypoint\n" {
		t.Errorf("--entrypoint: %q", out)
	}
	out := d.berth(nil, "run", "-e", "A=1", "-w", "/tmp", "-u", "65534", "--hostname", "boxy", ref,
		"sh", "-c", "echo $A $(pwd) $(id -u) $(hostname)").ok(t)
	if out != "1 /tmp 65534 boxy\n" {
		t.Errorf("-e -w -u --hostname: %q", out)
	}
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("# settings\nFROM_FILE=yes\nA=file\n"), 0644); err != nil {
		t.Fatal(err)
	}
	if out := d.berth(nil, "run", "--env-file", envFile, "-e", "A=flag", ref, "sh", "-c", "echo $FROM_FILE $A").ok(t); out != "yes flag\n" {
		t.Errorf("--env-file with -e: %q", out)
	}
	// Bind mounts, read-only root, tmpfs.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in"), []byte("from the host\n"), 0644); err != nil {
		t.Fatal(err)
	}
	if out := d.berth(nil, "run", "-v", dir+":/data", ref, "sh", "-c", "cat /data/in; echo back > /data/out").ok(t); out != "from the host\n" {
		t.Errorf("-v: %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "out")); err != nil || string(b) != "back\n" {
		t.Errorf("written through the bind mount: %q %v", b, err)
	}
	d.berth(nil, "run", "-v", dir+":/data:ro", ref, "touch", "/data/x").fails(t, 1, "Read-only file system")
	r = d.berth(nil, "run", "--read-only", "--tmpfs", "/scratch", ref, "sh", "-c", "touch /scratch/ok && touch /nope")
	if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Errorf("--read-only: exit %d, stderr %q", r.code, r.stderr)
	}
	if out := d.berth(nil, "ps", "-aq").ok(t); len(strings.Fields(out)) != 9 {
		t.Errorf("ps -aq after 9 runs without --rm: %q", out)
	}
}

func TestRunRmLeavesNothing(t *testing.T) {
	d, ref := containerDaemon(t)
	if r := d.berth(nil, "run", "--rm", ref, "sh", "-c", "echo bye; exit 5"); r.code != 5 || r.stdout != "bye\n" {
		t.Errorf("run --rm: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	d.noContainers(t)
	// Its network (bridge, no published port) goes just after: namespace
	// and address.
	eventually(t, 10*time.Second, "the network of the removed container to go", func() bool {
		netns, _ := os.ReadDir(filepath.Join(d.state, "net", "netns"))
		addrs, _ := filepath.Glob(filepath.Join(d.state, "net", "ipam", "*", "10.*"))
		return len(netns) == 0 && len(addrs) == 0
	})
	// -d --rm: the daemon removes the container when it exits.
	d.berth(nil, "run", "-d", "--rm", ref, "sleep", "1").ok(t)
	eventually(t, 30*time.Second, "the daemon to remove the container", func() bool {
		return strings.TrimSpace(d.berth(nil, "ps", "-aq").ok(t)) == ""
	})
	c := d.client("default")
	snaps, err := c.Snapshots("").List(context.Background(), "kind==active")
	if err != nil || len(snaps) != 0 {
		t.Errorf("active snapshots after --rm: %v %+v", err, snaps)
	}
}

func TestRunPullsAMissingImage(t *testing.T) {
	d := startContainerDaemon(t)
	ref := busyboxRef(t)
	d.berth(nil, "run", "--pull", "never", ref, "true").fails(t, 1, ref)
	d.noContainers(t)
	r := d.berth(nil, "run", "--rm", ref, "echo", "pulled first")
	if r.code != 0 || r.stdout != "pulled first\n" || !strings.Contains(r.stderr, "Unable to find image '"+ref+"' locally") {
		t.Errorf("run of a missing image: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := d.berth(nil, "run", "--rm", ref, "true"); r.code != 0 || r.stderr != "" {
		t.Errorf("second run pulled again: exit %d, stderr %q", r.code, r.stderr)
	}
	d.berth(nil, "create", "--pull", "always", ref).ok(t)
}

func TestRunForwardsStdin(t *testing.T) {
	d, ref := containerDaemon(t)
	if out := d.berth([]byte("hi\n"), "run", "--rm", "-i", ref, "cat").ok(t); out != "hi\n" {
		t.Errorf("echo hi | run -i cat: %q", out)
	}
	big := strings.Repeat("0123456789abcdef", 1<<14) // 256 KiB: several messages
	if out := d.berth([]byte(big), "run", "--rm", "-i", ref, "wc", "-c").ok(t); strings.TrimSpace(out) != fmt.Sprint(len(big)) {
		t.Errorf("wc -c of %d bytes: %q", len(big), out)
	}
	// Without -i the container's stdin is empty.
	if out := d.berth([]byte("ignored\n"), "run", "--rm", ref, "cat").ok(t); out != "" {
		t.Errorf("run cat without -i: %q", out)
	}
}

func TestRunForwardsSignalsWithoutATerminal(t *testing.T) {
	d, ref := containerDaemon(t)
	cmd, stdout, stderr := d.berthProcess(t, "run", "--rm", ref, "sh", "-c",
		`n=0; trap 'n=$((n+1)); echo int-$n; [ $n -ge 2 ] && exit 9' INT; trap 'echo term' TERM; echo ready; while :; do sleep 0.1; done`)
	eventually(t, 30*time.Second, "the container to start", func() bool { return strings.Contains(stdout.String(), "ready") })
	cmd.Process.Signal(syscall.SIGTERM)
	eventually(t, 10*time.Second, "SIGTERM to be forwarded", func() bool { return strings.Contains(stdout.String(), "term") })
	cmd.Process.Signal(syscall.SIGINT)
	eventually(t, 10*time.Second, "SIGINT to be forwarded", func() bool { return strings.Contains(stdout.String(), "int-1") })
	cmd.Process.Signal(syscall.SIGINT) // a second Ctrl-C is forwarded too
	if code := exitCodeOf(t, cmd); code != 9 {
		t.Errorf("exit %d, want 9; stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	if got := stdout.String(); got != "ready\nterm\nint-1\nint-2\n" {
		t.Errorf("stdout %q", got)
	}
	d.noContainers(t)
}

// openPTY opens a pseudo-terminal pair of size rows x cols.
func openPTY(t *testing.T, rows, cols uint16) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal("unlockpt:", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal("ptsname:", err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
	return master, slave
}

// berthOnTerminal runs the CLI with a terminal as stdin, stdout and stderr
// (and controlling terminal) and returns the terminal's master side and
// what it has read so far.
func (d *daemon) berthOnTerminal(t *testing.T, args ...string) (cmd *exec.Cmd, master *os.File, screen *testutil.Buffer) {
	t.Helper()
	master, slave := openPTY(t, 40, 100)
	cmd = exec.Command(filepath.Join(binDir, "berth"), append([]string{"--address", d.sock}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	screen = &testutil.Buffer{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(screen, master) // ends with EIO once the terminal is closed
	}()
	t.Cleanup(func() {
		master.Close()
		<-done
	})
	return cmd, master, screen
}

func TestRunWithATerminal(t *testing.T) {
	d, ref := containerDaemon(t)
	cmd, _, screen := d.berthOnTerminal(t, "run", "--rm", "-it", ref, "sh", "-c",
		"/bin/busybox tty; /bin/busybox stty size; test -t 0 && echo stdin-is-a-tty; echo $((6*7))")
	if code := exitCodeOf(t, cmd); code != 0 {
		t.Fatalf("run -it: exit %d; screen:\n%s", code, screen.String())
	}
	eventually(t, 5*time.Second, "the output", func() bool { return strings.Contains(screen.String(), "42") })
	out := screen.String()
	for _, want := range []string{"/dev/pts/", "40 100", "stdin-is-a-tty", "42\r\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("screen lacks %q:\n%q", want, out)
		}
	}

	// Ctrl-C travels as a keystroke: the container's terminal turns it
	// into SIGINT.
	cmd, master, screen := d.berthOnTerminal(t, "run", "--rm", "-it", ref, "sh", "-c",
		`trap "echo got-int; exit 7" INT; echo ready; while :; do sleep 0.1; done`)
	eventually(t, 30*time.Second, "the container to start", func() bool { return strings.Contains(screen.String(), "ready") })
	if _, err := master.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	if code := exitCodeOf(t, cmd); code != 7 {
		t.Errorf("exit %d after Ctrl-C, want 7; screen:\n%q", code, screen.String())
	}
	eventually(t, 5*time.Second, "the trap's output", func() bool { return strings.Contains(screen.String(), "got-int") })

	// What is typed reaches the container; its terminal echoes it.
	cmd, master, screen = d.berthOnTerminal(t, "run", "--rm", "-it", ref, "sh", "-c", "read line; echo got:$line")
	eventually(t, 30*time.Second, "the container to start", func() bool {
		return len(d.berth(nil, "ps", "-q").stdout) > 0
	})
	if _, err := master.Write([]byte("typed\r")); err != nil {
		t.Fatal(err)
	}
	if code := exitCodeOf(t, cmd); code != 0 {
		t.Errorf("exit %d; screen:\n%q", code, screen.String())
	}
	eventually(t, 5*time.Second, "the echo", func() bool { return strings.Contains(screen.String(), "got:typed") })
	d.noContainers(t)
}

func TestExecWithATerminal(t *testing.T) {
	d, ref := containerDaemon(t)
	d.berth(nil, "run", "-d", "--name", "box", ref, "sleep", "300").ok(t)
	cmd, _, screen := d.berthOnTerminal(t, "exec", "-it", "box", "sh", "-c", "/bin/busybox stty size; echo done; exit 3")
	if code := exitCodeOf(t, cmd); code != 3 {
		t.Errorf("exec -it: exit %d; screen:\n%q", code, screen.String())
	}
	eventually(t, 5*time.Second, "the output", func() bool { return strings.Contains(screen.String(), "done") })
	if !strings.Contains(screen.String(), "40 100") {
		t.Errorf("the exec's terminal is not the size of berth's; screen:\n%q", screen.String())
	}
}

func TestRunBadInputIsExplainedAndLeavesNothing(t *testing.T) {
	d, ref := containerDaemon(t)
	host, _, _ := strings.Cut(ref, "/")

	d.berth(nil, "run", host+"/no/such:tag").fails(t, 1, "not found")
	d.berth(nil, "run", "--pull", "never", "localhost/absent:1", "true").fails(t, 1, "localhost/absent:1")
	d.berth(nil, "run", "-v", "/nope:/x", ref, "true").fails(t, 1, "/nope")
	d.berth(nil, "run", "-d", "-v", "/nope:/x", ref, "true").fails(t, 1, "/nope")
	d.berth(nil, "run", "--runtime", "nope", ref, "true").fails(t, 1, "nope")
	d.berth(nil, "create", "--runtime", "nope", ref, "true").fails(t, 1, "nope")
	d.berth(nil, "run", ref, "/no/such/binary").fails(t, 1, "/no/such/binary")
	d.berth([]byte("x"), "run", "-i", ref, "/no/such/binary").fails(t, 1, "/no/such/binary")
	d.berth(nil, "run", "--user", "nosuchuser", ref, "true").fails(t, 1, "nosuchuser")
	d.berth(nil, "run", "--cap-add", "NOT_A_CAP", ref, "true").fails(t, 1, "NOT_A_CAP")
	d.berth(nil, "run", "--bogus", ref).fails(t, 2, "unknown flag: --bogus")
	d.berth(nil, "run", "--memory", "lots", ref).fails(t, 2, "lots")
	d.berth(nil, "run", "-p", "99999:80", ref).fails(t, 2, "99999")
	d.noContainers(t)

	c := d.client("default")
	snaps, err := c.Snapshots("").List(context.Background(), "kind==active")
	if err != nil || len(snaps) != 0 {
		t.Errorf("active snapshots after failed runs: %v %+v", err, snaps)
	}
	if _, err := c.GetContainer(context.Background(), "nope"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("GetContainer of an absent container: %v", err)
	}
	for _, args := range [][]string{{"start", "nope"}, {"stop", "nope"}, {"rm", "nope"}, {"pause", "nope"}, {"logs", "nope"}, {"exec", "nope", "true"}, {"port", "nope"}, {"top", "nope"}, {"update", "--cpus", "1", "nope"}} {
		d.berth(nil, args...).fails(t, 1, "nope")
	}
}
