package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/internal/testutil"
	"golang.org/x/sys/unix"
)

// containerDaemon starts berthd with the busybox test image pulled and
// returns the image's reference.
func containerDaemon(t *testing.T) (*daemon, string) {
	t.Helper()
	d := startContainerDaemon(t)
	ref := busyboxRef(t)
	d.berth(nil, "pull", "-q", ref).ok(t)
	return d, ref
}

// startContainerDaemon starts berthd for tests that run containers. When
// the test ends, every container left is force-removed, berthd is stopped
// and no mount may be left.
func startContainerDaemon(t *testing.T) *daemon {
	t.Helper()
	return startContainerDaemonWith(t, newDaemon(t))
}

// startContainerDaemonWith is startContainerDaemon for a daemon the test
// configured.
func startContainerDaemonWith(t *testing.T, d *daemon) *daemon {
	t.Helper()
	testutil.RequirePrivileged(t)
	testutil.RequireBinary(t, "runc")
	d.start()
	t.Cleanup(func() {
		if ids := strings.Fields(d.berth(nil, "ps", "-aq").stdout); len(ids) > 0 {
			d.berth(nil, append([]string{"rm", "-f"}, ids...)...)
		}
		d.stop()
		// The daemon keeps state/net/netns mounted (a shared mount of
		// itself) across restarts; the test's directory must go.
		unix.Unmount(filepath.Join(d.state, "net", "netns"), unix.MNT_DETACH)
		for _, m := range mountsUnder(t, d.root, d.state) {
			t.Errorf("mount left after every container was removed and berthd stopped: %s", m)
			unix.Unmount(m, unix.MNT_DETACH)
		}
	})
	return d
}

// mountsUnder lists the mount points below the given directories.
func mountsUnder(t *testing.T, dirs ...string) []string {
	t.Helper()
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.SplitSeq(string(info), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		for _, dir := range dirs {
			if strings.HasPrefix(fields[4], dir+"/") {
				out = append(out, fields[4])
			}
		}
	}
	return out
}

// noContainers fails the test if any container is left.
func (d *daemon) noContainers(t *testing.T) {
	t.Helper()
	if out := strings.TrimSpace(d.berth(nil, "ps", "-a").ok(t)); strings.Count(out, "\n") != 0 {
		t.Errorf("containers left behind:\n%s", out)
	}
}

// inspect returns a container's record from `berth inspect`.
func (d *daemon) inspect(t *testing.T, id string) client.Container {
	t.Helper()
	var cts []client.Container
	out := d.berth(nil, "inspect", id).ok(t)
	if err := json.Unmarshal([]byte(out), &cts); err != nil || len(cts) != 1 {
		t.Fatalf("inspect %s: %v\n%s", id, err, out)
	}
	return cts[0]
}

// waitStatus waits until a container's status is want.
func (d *daemon) waitStatus(t *testing.T, id string, want client.Status) client.Container {
	t.Helper()
	var ct client.Container
	eventually(t, 30*time.Second, fmt.Sprintf("container %s %s", id, want), func() bool {
		var cts []client.Container
		r := d.berth(nil, "inspect", id)
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &cts) != nil || len(cts) != 1 {
			return false // not created yet
		}
		ct = cts[0]
		return ct.Status == want
	})
	return ct
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// berthProcess starts the CLI in the background; its output collects in
// the returned buffers.
func (d *daemon) berthProcess(t *testing.T, args ...string) (cmd *exec.Cmd, stdout, stderr *testutil.Buffer) {
	t.Helper()
	cmd = exec.Command(filepath.Join(binDir, "berth"), append([]string{"--address", d.sock}, args...)...)
	stdout, stderr = &testutil.Buffer{}, &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, stdout, stderr
}

// exitCodeOf waits for cmd and returns its exit code.
func exitCodeOf(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not exit within 60s", cmd.Args)
		return -1
	}
}

var idPattern = regexp.MustCompile(`^[0-9a-f]{12,64}\n$`)

func TestDetachedContainerInPsInspectPauseAndStop(t *testing.T) {
	d, ref := containerDaemon(t)
	id := d.berth(nil, "run", "-d", "--name", "web", "-l", "team=ops", ref, "sleep", "300").ok(t)
	if !idPattern.MatchString(id) {
		t.Fatalf("run -d printed %q, want an id", id)
	}
	id = strings.TrimSpace(id)
	short := id[:12]

	ps := d.berth(nil, "ps").ok(t)
	lines := strings.Split(strings.TrimSpace(ps), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "CONTAINER ID") || !strings.Contains(lines[0], "NAMES") {
		t.Fatalf("ps:\n%s", ps)
	}
	for _, want := range []string{short, ref, `"sleep 300"`, "Up ", "web"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("ps row lacks %q:\n%s", want, ps)
		}
	}
	if q := d.berth(nil, "ps", "-q").ok(t); q != short+"\n" {
		t.Errorf("ps -q = %q, want %q", q, short)
	}
	if q := d.berth(nil, "ps", "-q", "--no-trunc").ok(t); q != id+"\n" {
		t.Errorf("ps -q --no-trunc = %q", q)
	}
	if q := d.berth(nil, "ps", "-q", "--filter", "labels.team==dev").ok(t); q != "" {
		t.Errorf("ps filtered on another label = %q", q)
	}
	var listed []client.Container
	if err := json.Unmarshal([]byte(d.berth(nil, "ps", "--format", "json").ok(t)), &listed); err != nil || len(listed) != 1 || listed[0].ID != id {
		t.Fatalf("ps --format json: %v %+v", err, listed)
	}

	// Every way of naming the container finds it.
	for _, name := range []string{id, short, id[:5], "web"} {
		if ct := d.inspect(t, name); ct.ID != id {
			t.Errorf("inspect %s found %s", name, ct.ID)
		}
	}
	ct := d.inspect(t, "web")
	if ct.Name != "web" || ct.Status != client.StatusRunning || ct.PID == 0 || ct.Config.Image != ref ||
		ct.Labels["team"] != "ops" || ct.ImageDigest == "" || ct.SnapshotKey == "" || ct.IP == "" {
		t.Errorf("inspect: %+v", ct)
	}
	var spec struct {
		Process struct {
			Args []string `json:"args"`
		} `json:"process"`
	}
	if err := json.Unmarshal(ct.Spec, &spec); err != nil || strings.Join(spec.Process.Args, " ") != "sleep 300" {
		t.Errorf("inspect spec: %v, args %q", err, spec.Process.Args)
	}
	d.berth(nil, "inspect", "web", "nope").fails(t, 1, "nope")

	// A second container cannot take the name.
	d.berth(nil, "run", "-d", "--name", "web", ref, "true").fails(t, 1, "web")

	if out := d.berth(nil, "pause", "web").ok(t); out != "web\n" {
		t.Errorf("pause printed %q", out)
	}
	if ps := d.berth(nil, "ps").ok(t); !strings.Contains(ps, "(Paused)") {
		t.Errorf("ps of a paused container:\n%s", ps)
	}
	d.berth(nil, "unpause", "web").ok(t)
	if ps := d.berth(nil, "ps").ok(t); strings.Contains(ps, "Paused") || !strings.Contains(ps, "Up ") {
		t.Errorf("ps after unpause:\n%s", ps)
	}

	// sleep, as the container's init, ignores SIGTERM: stop kills it after
	// the timeout.
	start := time.Now()
	if out := d.berth(nil, "stop", "-t", "1", "web").ok(t); out != "web\n" {
		t.Errorf("stop printed %q", out)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("stop -t 1 returned after %s, before the timeout", took)
	}
	ct = d.inspect(t, "web")
	if ct.Status == client.StatusRunning || ct.ExitStatus != 137 {
		t.Errorf("after stop: status %q, exit %d; want 137 (SIGKILL)", ct.Status, ct.ExitStatus)
	}
	if ps := d.berth(nil, "ps").ok(t); strings.Contains(ps, "web") {
		t.Errorf("ps lists a stopped container:\n%s", ps)
	}
	if ps := d.berth(nil, "ps", "-a").ok(t); !strings.Contains(ps, "Exited (137)") {
		t.Errorf("ps -a:\n%s", ps)
	}
	d.berth(nil, "stop", "web").ok(t) // stopping a stopped container is fine

	// It starts again, with a new task.
	d.berth(nil, "start", "web").ok(t)
	d.waitStatus(t, "web", client.StatusRunning)
	d.berth(nil, "rm", "web").fails(t, 1, "web")
	if out := d.berth(nil, "rm", "-f", "web").ok(t); out != "web\n" {
		t.Errorf("rm -f printed %q", out)
	}
	d.noContainers(t)
}

func TestStopSendsTermFirst(t *testing.T) {
	d, ref := containerDaemon(t)
	d.berth(nil, "run", "-d", "--name", "polite", ref, "sh", "-c", `trap "echo bye; exit 0" TERM; echo up; while :; do sleep 0.1; done`).ok(t)
	eventually(t, 10*time.Second, "the trap to be set", func() bool {
		return strings.Contains(d.berth(nil, "logs", "polite").stdout, "up")
	})
	d.berth(nil, "stop", "-t", "30", "polite").ok(t)
	ct := d.inspect(t, "polite")
	if ct.ExitStatus != 0 {
		t.Errorf("exit status %d after SIGTERM with a trap, want 0", ct.ExitStatus)
	}
	if out := d.berth(nil, "logs", "polite").ok(t); out != "up\nbye\n" {
		t.Errorf("logs %q", out)
	}
}

func TestKillSendsTheNamedSignal(t *testing.T) {
	d, ref := containerDaemon(t)
	d.berth(nil, "run", "-d", "--name", "k", ref, "sh", "-c",
		`trap "echo got-usr1" USR1; trap "echo got-hup" HUP; echo up; while :; do sleep 0.1; done`).ok(t)
	eventually(t, 10*time.Second, "the traps to be set", func() bool {
		return strings.Contains(d.berth(nil, "logs", "k").stdout, "up")
	})
	d.berth(nil, "kill", "-s", "USR1", "k").ok(t)
	eventually(t, 10*time.Second, "USR1 to be handled", func() bool {
		return strings.Contains(d.berth(nil, "logs", "k").stdout, "got-usr1")
	})
	d.berth(nil, "kill", "--signal", "1", "k").ok(t)
	eventually(t, 10*time.Second, "HUP to be handled", func() bool {
		return strings.Contains(d.berth(nil, "logs", "k").stdout, "got-hup")
	})
	if ct := d.inspect(t, "k"); ct.Status != client.StatusRunning {
		t.Errorf("status %q after handled signals", ct.Status)
	}
	d.berth(nil, "kill", "k").ok(t) // SIGKILL
	ct := d.waitStatus(t, "k", client.StatusStopped)
	if ct.ExitStatus != 137 {
		t.Errorf("exit status %d after kill, want 137", ct.ExitStatus)
	}
	d.berth(nil, "kill", "nope").fails(t, 1, "nope")
}

func TestLogsTailTimestampsSinceAndFollow(t *testing.T) {
	d, ref := containerDaemon(t)
	// stdout and stderr are two pipes, copied to the log independently:
	// the stderr line goes first, well ahead, so the log's order is known.
	d.berth(nil, "run", "--name", "chatty", ref, "sh", "-c", `echo oops >&2; sleep 0.3; for i in 1 2 3 4 5; do echo line $i; done`).ok(t)
	r := d.berth(nil, "logs", "chatty")
	if r.ok(t) != "line 1\nline 2\nline 3\nline 4\nline 5\n" || r.stderr != "oops\n" {
		t.Errorf("logs: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	r = d.berth(nil, "logs", "--tail", "2", "chatty")
	if r.ok(t) != "line 4\nline 5\n" || r.stderr != "" {
		t.Errorf("logs --tail 2: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	r = d.berth(nil, "logs", "--tail", "6", "chatty")
	if r.ok(t) != "line 1\nline 2\nline 3\nline 4\nline 5\n" || r.stderr != "oops\n" {
		t.Errorf("logs --tail 6: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if out := d.berth(nil, "logs", "--tail", "0", "chatty").ok(t); out != "" {
		t.Errorf("logs --tail 0: %q", out)
	}
	out := d.berth(nil, "logs", "-t", "chatty").ok(t)
	stamped := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line \d$`)
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !stamped.MatchString(l) {
			t.Errorf("logs -t line %q", l)
		}
	}
	first, _, _ := strings.Cut(out, " ")
	at, err := time.Parse(time.RFC3339Nano, first)
	if err != nil || time.Since(at) > time.Minute || time.Since(at) < 0 {
		t.Errorf("logs -t time %q: %v", first, err)
	}
	if out := d.berth(nil, "logs", "--since", "1h", "chatty").ok(t); strings.Count(out, "\n") != 5 {
		t.Errorf("logs --since 1h: %q", out)
	}
	later := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	if r := d.berth(nil, "logs", "--since", later, "chatty"); r.ok(t) != "" || r.stderr != "" {
		t.Errorf("logs --since %s: %q %q", later, r.stdout, r.stderr)
	}
	if out := d.berth(nil, "logs", "--until", at.Add(-time.Second).Format(time.RFC3339Nano), "chatty").ok(t); out != "" {
		t.Errorf("logs --until before the first line: %q", out)
	}

	// -f prints what comes and returns when the container stops.
	d.berth(nil, "run", "-d", "--name", "slow", ref, "sh", "-c", "echo a; sleep 2; echo b").ok(t)
	r = d.berth(nil, "logs", "-f", "slow")
	if r.ok(t) != "a\nb\n" {
		t.Errorf("logs -f: %q", r.stdout)
	}
	if ct := d.inspect(t, "slow"); ct.Status == client.StatusRunning {
		t.Error("logs -f returned while the container runs")
	}
	d.berth(nil, "logs", "nope").fails(t, 1, "nope")
}

func TestExecStatusOutputAndStdin(t *testing.T) {
	d, ref := containerDaemon(t)
	d.berth(nil, "run", "-d", "--name", "box", ref, "sleep", "300").ok(t)
	r := d.berth(nil, "exec", "box", "sh", "-c", "echo in-exec; echo to-err >&2; exit 4")
	if r.code != 4 || r.stdout != "in-exec\n" || r.stderr != "to-err\n" {
		t.Errorf("exec: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if out := d.berth([]byte("through stdin\n"), "exec", "-i", "box", "cat").ok(t); out != "through stdin\n" {
		t.Errorf("exec -i cat: %q", out)
	}
	if out := d.berth(nil, "exec", "-e", "GREETING=hej", "-w", "/tmp", "-u", "nobody", "box", "sh", "-c", "echo $GREETING $(pwd) $(id -u)").ok(t); out != "hej /tmp 65534\n" {
		t.Errorf("exec -e -w -u: %q", out)
	}
	d.berth(nil, "exec", "-d", "box", "sh", "-c", "echo detached > /tmp/mark").ok(t)
	eventually(t, 10*time.Second, "the detached exec", func() bool {
		return d.berth(nil, "exec", "box", "cat", "/tmp/mark").stdout == "detached\n"
	})
	if out := d.berth(nil, "top", "box").ok(t); !strings.Contains(out, "PID") || !strings.Contains(out, "sleep 300") || !strings.Contains(out, "root") {
		t.Errorf("top:\n%s", out)
	}
	d.berth(nil, "exec", "box", "/no/such/binary").fails(t, 1, "/no/such/binary")

	d.berth(nil, "stop", "-t", "0", "box").ok(t)
	d.berth(nil, "exec", "box", "true").fails(t, 1, "box is not running")
	d.berth(nil, "create", "--name", "fresh", ref).ok(t)
	d.berth(nil, "exec", "fresh", "true").fails(t, 1, "fresh is not running")
}

func TestRestartPolicyOnFailure(t *testing.T) {
	d, ref := containerDaemon(t)
	d.berth(nil, "run", "-d", "--name", "flaky", "--restart", "on-failure:2", ref, "sh", "-c", "echo run; exit 1").ok(t)
	eventually(t, 30*time.Second, "two restarts", func() bool {
		ct := d.inspect(t, "flaky")
		return ct.RestartCount == 2 && ct.Status != client.StatusRunning && known(ct.ExitedAt)
	})
	time.Sleep(2 * time.Second)
	ct := d.inspect(t, "flaky")
	if ct.RestartCount != 2 || ct.Status == client.StatusRunning || ct.ExitStatus != 1 {
		t.Errorf("after the policy gave up: restarts %d, status %q, exit %d", ct.RestartCount, ct.Status, ct.ExitStatus)
	}
	if out := d.berth(nil, "logs", "flaky").ok(t); out != "run\nrun\nrun\n" {
		t.Errorf("logs of three runs: %q", out)
	}
	// A zero exit is no failure.
	d.berth(nil, "run", "--name", "fine", "--restart", "on-failure", ref, "true").ok(t)
	time.Sleep(time.Second)
	if ct := d.inspect(t, "fine"); ct.RestartCount != 0 {
		t.Errorf("a successful container restarted %d times", ct.RestartCount)
	}
	// update changes the policy.
	d.berth(nil, "update", "--restart", "no", "flaky").ok(t)
	if ct := d.inspect(t, "flaky"); ct.Config.Restart != "no" {
		t.Errorf("restart policy after update: %q", ct.Config.Restart)
	}
}

func known(t time.Time) bool { return !t.IsZero() }

func TestWaitCreateStartAndAttach(t *testing.T) {
	d, ref := containerDaemon(t)
	id := strings.TrimSpace(d.berth(nil, "create", "--name", "later", ref, "sh", "-c", "echo hi; echo err >&2; exit 2").ok(t))
	if ps := d.berth(nil, "ps", "-a").ok(t); !strings.Contains(ps, "Created") || !strings.Contains(ps, id[:12]) {
		t.Errorf("ps -a of a created container:\n%s", ps)
	}
	r := d.berth(nil, "start", "-a", "later")
	if r.code != 2 || r.stdout != "hi\n" || r.stderr != "err\n" {
		t.Errorf("start -a: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if out := d.berth(nil, "wait", "later").ok(t); out != "2\n" {
		t.Errorf("wait on an exited container: %q", out)
	}
	if out := d.berth(nil, "start", "later").ok(t); out != "later\n" {
		t.Errorf("start: %q", out)
	}
	if out := d.berth(nil, "wait", "later").ok(t); out != "2\n" {
		t.Errorf("wait: %q", out)
	}
	if out := d.berth(nil, "logs", "later").ok(t); out != "hi\nhi\n" {
		t.Errorf("logs of two runs: %q", out)
	}

	d.berth(nil, "run", "-d", "--name", "w1", ref, "sh", "-c", "sleep 1; exit 7").ok(t)
	d.berth(nil, "run", "-d", "--name", "w2", ref, "true").ok(t)
	if out := d.berth(nil, "wait", "w1", "w2").ok(t); out != "7\n0\n" {
		t.Errorf("wait w1 w2: %q", out)
	}
	r = d.berth(nil, "wait", "w1", "nope")
	if r.code != 1 || r.stdout != "7\n" || !strings.Contains(r.stderr, "nope") {
		t.Errorf("wait w1 nope: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestPublishedPortAnswers(t *testing.T) {
	d, ref := containerDaemon(t)
	hostPort := freePort(t)[len("127.0.0.1:"):]
	d.berth(nil, "run", "-d", "--name", "srv", "-p", "127.0.0.1:"+hostPort+":8080", ref,
		"sh", "-c", "echo hello-port > /tmp/index.html; exec /bin/busybox httpd -f -p 8080 -h /tmp").ok(t)
	if out := d.berth(nil, "port", "srv").ok(t); out != "8080/tcp -> 127.0.0.1:"+hostPort+"\n" {
		t.Errorf("port: %q", out)
	}
	if out := d.berth(nil, "port", "srv", "8080").ok(t); out != "127.0.0.1:"+hostPort+"\n" {
		t.Errorf("port srv 8080: %q", out)
	}
	d.berth(nil, "port", "srv", "9090/udp").fails(t, 1, "does not publish 9090/udp")
	if ps := d.berth(nil, "ps").ok(t); !strings.Contains(ps, "127.0.0.1:"+hostPort+"->8080/tcp") {
		t.Errorf("ps ports:\n%s", ps)
	}
	var body string
	eventually(t, 15*time.Second, "the published port to answer", func() bool {
		resp, err := http.Get("http://127.0.0.1:" + hostPort + "/index.html")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	})
	if body != "hello-port\n" {
		t.Errorf("body %q", body)
	}
	// The port is free as soon as the container is removed.
	d.berth(nil, "rm", "-f", "srv").ok(t)
	d.berth(nil, "run", "-d", "--name", "again", "-p", "127.0.0.1:"+hostPort+":8080", ref, "sleep", "300").ok(t)
	d.berth(nil, "rm", "-f", "again").ok(t)
}

func TestUpdateStatsAndTop(t *testing.T) {
	d, ref := containerDaemon(t)
	d.berth(nil, "run", "-d", "--name", "lim", "--memory", "128m", ref, "sleep", "300").ok(t)
	out := d.berth(nil, "stats", "--no-stream", "lim").ok(t)
	for _, want := range []string{"CPU %", "MEM USAGE / LIMIT", "PIDS", "BLOCK I/O", "lim", "/ 128 MiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("stats lacks %q:\n%s", want, out)
		}
	}
	if out := d.berth(nil, "update", "--memory", "64m", "--pids-limit", "50", "lim").ok(t); out != "lim\n" {
		t.Errorf("update printed %q", out)
	}
	if out := d.berth(nil, "stats", "--no-stream").ok(t); !strings.Contains(out, "/ 64 MiB") {
		t.Errorf("stats after update:\n%s", out)
	}
	var spec struct {
		Linux struct {
			Resources struct {
				Memory struct {
					Limit int64 `json:"limit"`
				} `json:"memory"`
				Pids struct {
					Limit int64 `json:"limit"`
				} `json:"pids"`
			} `json:"resources"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(d.inspect(t, "lim").Spec, &spec); err != nil || spec.Linux.Resources.Memory.Limit != 64<<20 || spec.Linux.Resources.Pids.Limit != 50 {
		t.Errorf("spec resources after update: %v %+v", err, spec.Linux.Resources)
	}
	// The limits are the cgroup's.
	st, err := d.client("default").TaskStats(context.Background(), "lim")
	if err != nil || st.MemoryLimit != 64<<20 || st.PidsLimit != 50 {
		t.Errorf("cgroup limits after update: %v %+v", err, st)
	}
	if out := d.berth(nil, "top", "lim").ok(t); !strings.HasPrefix(out, "PID") || !strings.Contains(out, "TIME") {
		t.Errorf("top:\n%s", out)
	}
	d.berth(nil, "create", "--name", "idle", ref).ok(t)
	if out := d.berth(nil, "stats", "--no-stream", "-a").ok(t); !strings.Contains(out, "idle") || !strings.Contains(out, "lim") {
		t.Errorf("stats -a:\n%s", out)
	}
	d.berth(nil, "top", "idle").fails(t, 1, "idle")
}

func TestContainersOfANamespaceStayThere(t *testing.T) {
	d, ref := containerDaemon(t)
	d.berth(nil, "run", "-d", "--name", "mine", ref, "sleep", "300").ok(t)
	d.berth(nil, "namespace", "create", "other").ok(t)
	if out := d.berth(nil, "-n", "other", "ps", "-aq").ok(t); out != "" {
		t.Errorf("ps in another namespace: %q", out)
	}
	d.berth(nil, "-n", "other", "inspect", "mine").fails(t, 1, "mine")
	c := d.client("default")
	cts, err := c.ListContainers(context.Background(), "name==mine")
	if err != nil || len(cts) != 1 || cts[0].Status != client.StatusRunning {
		t.Errorf("client ListContainers: %v %+v", err, cts)
	}
}
