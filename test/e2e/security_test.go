package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
)

// TestDefaultSecurityFromInside checks, from inside a container berth ran,
// the defaults docs/security.md promises.
func TestDefaultSecurityFromInside(t *testing.T) {
	d, ref := containerDaemon(t)
	out := d.berth(nil, "run", "--rm", "--memory", "64m", "--pids-limit", "50", ref, "sh", "-c", `
		grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
		echo fds: $(ls /proc/self/fd)
		cat /proc/kcore >/dev/null 2>&1 && echo kcore: readable || echo kcore: masked
		echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo procsys: writable || echo procsys: read-only
		echo memory: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
		echo pids: $(cat /sys/fs/cgroup/pids/pids.max)`).ok(t)
	for _, want := range []string{
		"CapEff:\t00000000000005fb", // the nine default capabilities
		"NoNewPrivs:\t1",
		"Seccomp:\t2",
		"fds: 0 1 2 3", // stdio, and the directory ls is reading
		"kcore: masked",
		"procsys: read-only",
		"memory: 67108864",
		"pids: 50",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inside the container, want %q; got:\n%s", want, out)
		}
	}
	// --privileged lifts them.
	out = d.berth(nil, "run", "--rm", "--privileged", ref, "grep", "-E", "^(CapEff|Seccomp):", "/proc/self/status").ok(t)
	if strings.Contains(out, "00000000000005fb") || !strings.Contains(out, "Seccomp:\t0") {
		t.Errorf("--privileged: %s", out)
	}
	// A user from the image's /etc/passwd, and a numeric one.
	if out := d.berth(nil, "run", "--rm", "-u", "1234:5678", ref, "id").ok(t); !strings.Contains(out, "uid=1234 gid=5678") {
		t.Errorf("-u 1234:5678: id says %q", out)
	}
	d.berth(nil, "run", "--rm", "-u", "4294967296", ref, "id").fails(t, 1, "out of range")
}

// TestOOMKillIsRecordedAndAnnounced runs a container over its memory limit.
func TestOOMKillIsRecordedAndAnnounced(t *testing.T) {
	d, ref := containerDaemon(t)
	events, stdout, _ := d.berthProcess(t, "events", "--filter", "topic==/tasks/oom", "--filter", "topic==/containers/create")
	probes := 0
	eventually(t, 10*time.Second, "the event stream to be subscribed", func() bool {
		probes++
		d.berth(nil, "create", "--name", fmt.Sprintf("probe%d", probes), ref).ok(t)
		return strings.Contains(stdout.String(), "/containers/create")
	})
	r := d.berth(nil, "run", "--name", "hog", "--memory", "8m", ref, "sh", "-c", `x=$(head -c 100000000 /dev/zero | tr '\0' a); echo survived`)
	if r.code != 137 {
		t.Errorf("run over its memory limit exited %d, want 137 (SIGKILL)\n%s%s", r.code, r.stdout, r.stderr)
	}
	var cts []client.Container
	if err := json.Unmarshal([]byte(d.berth(nil, "inspect", "hog").ok(t)), &cts); err != nil || len(cts) != 1 {
		t.Fatal(err)
	}
	if cts[0].ExitReason != "OOMKilled" || cts[0].ExitStatus != 137 {
		t.Errorf("inspect: exit %d reason %q, want 137 OOMKilled", cts[0].ExitStatus, cts[0].ExitReason)
	}
	eventually(t, 10*time.Second, "a /tasks/oom event", func() bool { return strings.Contains(stdout.String(), "/tasks/oom") })
	events.Process.Kill()
}
