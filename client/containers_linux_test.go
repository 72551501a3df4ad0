package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/internal/testutil"
)

// busybox pulls the busybox test image into c's namespace and returns its
// reference.
func busybox(t *testing.T, c *client.Client) string {
	t.Helper()
	testutil.RequirePrivileged(t)
	testutil.RequireBinary(t, "runc")
	ctx := context.Background()
	ref := testutil.StartRegistry(t, "") + "/library/busybox:client"
	testutil.PushImage(t, testutil.BusyboxImage(t), ref)
	if _, err := c.CreateNamespace(ctx, c.Namespace(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pull(ctx, ref, client.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	return ref
}

// describe renders a container for test messages, without its spec.
func describe(ct client.Container) string {
	ct.Spec = nil
	return fmt.Sprintf("%+v", ct)
}

// removeContainer force-removes a container when t ends.
func removeContainer(t *testing.T, c *client.Client, id string) {
	t.Cleanup(func() {
		if err := c.DeleteContainer(context.Background(), id, true); err != nil && !errors.Is(err, client.ErrNotFound) {
			t.Errorf("remove container %s: %v", id, err)
		}
	})
}

func TestContainerRecordsAndAttachedRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := connect(t, "containers")
	ref := busybox(t, c)
	cfg := client.ContainerConfig{
		Image:  ref,
		Args:   []string{"sh", "-c", "echo out; echo err >&2; read x; echo got $x; exit 3"},
		Env:    []string{"A=1"},
		Stdin:  true,
		Labels: map[string]string{"team": "client"},
		// The host's network keeps the daemon from mounting network
		// namespaces, which would outlive the in-process daemon.
		Network: "host",
	}
	ct, err := c.CreateContainer(ctx, cfg, client.CreateContainerOpts{Name: "attached"})
	if err != nil {
		t.Fatal(err)
	}
	removeContainer(t, c, ct.ID)
	if ct.ID == "" || ct.Name != "attached" || ct.Image != ref || ct.ImageDigest == "" || ct.SnapshotKey == "" ||
		len(ct.Spec) == 0 || ct.Labels["team"] != "client" || !ct.Config.Stdin || ct.CreatedAt.IsZero() {
		t.Errorf("created container: %s", describe(ct))
	}
	for _, ref := range []string{ct.ID, ct.ID[:6], "attached"} {
		if got, err := c.GetContainer(ctx, ref); err != nil || got.ID != ct.ID {
			t.Errorf("GetContainer(%q) = %s, %v", ref, got.ID, err)
		}
	}
	if list, err := c.ListContainers(ctx, "labels.team==client"); err != nil || len(list) != 1 || list[0].ID != ct.ID {
		t.Errorf("ListContainers by label: %v, %d containers", err, len(list))
	}
	if list, err := c.ListContainers(ctx, "name==other"); err != nil || len(list) != 0 {
		t.Errorf("ListContainers by another name: %v, %d containers", err, len(list))
	}
	if _, err := c.CreateContainer(ctx, cfg, client.CreateContainerOpts{Name: "attached"}); !errors.Is(err, client.ErrAlreadyExists) {
		t.Errorf("second container named attached: %v", err)
	}
	bad := cfg
	bad.Restart = "sometimes"
	if _, err := c.CreateContainer(ctx, bad, client.CreateContainerOpts{}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("bad restart policy: %v", err)
	}

	p, err := c.CreateTask(ctx, ct.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != client.StatusCreated || p.PID == 0 {
		t.Errorf("created task: %+v", p)
	}
	var stdout, stderr testutil.Buffer
	att, err := c.Attach(ctx, ct.ID, "", client.AttachOpts{Stdin: true, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	if _, err := c.StartTask(ctx, ct.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := att.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	if err := att.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	p, err = c.WaitTask(ctx, ct.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != client.StatusStopped || p.ExitStatus != 3 || p.ExitedAt.IsZero() {
		t.Errorf("waited task: %+v", p)
	}
	if err := att.Wait(); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "out\ngot hi\n" || stderr.String() != "err\n" {
		t.Errorf("attached output: stdout %q, stderr %q", stdout.String(), stderr.String())
	}

	var entries []client.LogEntry
	collect := func(e client.LogEntry) error { entries = append(entries, e); return nil }
	if err := c.ContainerLogs(ctx, ct.ID, client.LogsOptions{}, collect); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	for _, e := range entries {
		if e.Time.IsZero() {
			t.Errorf("log entry without time: %+v", e)
		}
		if e.Stream == "stderr" {
			errOut.Write(e.Data)
		} else {
			out.Write(e.Data)
		}
	}
	if out.String() != "out\ngot hi\n" || errOut.String() != "err\n" {
		t.Errorf("logs: stdout %q, stderr %q", out.String(), errOut.String())
	}
	entries = nil
	if err := c.ContainerLogs(ctx, ct.ID, client.LogsOptions{Tail: new(int64(1))}, collect); err != nil || len(entries) != 1 || string(entries[0].Data) != "got hi\n" {
		t.Errorf("logs with tail 1: %v %+v", err, entries)
	}
	stop := errors.New("enough")
	if err := c.ContainerLogs(ctx, ct.ID, client.LogsOptions{}, func(client.LogEntry) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("logs callback error: %v", err)
	}

	if p, err := c.DeleteTask(ctx, ct.ID, "", false); err != nil || p.ExitStatus != 3 {
		t.Errorf("DeleteTask: %+v %v", p, err)
	}
	got, err := c.GetContainer(ctx, ct.ID)
	if err != nil || got.ExitStatus != 3 || got.ExitedAt.IsZero() {
		t.Errorf("container after its task: %s %v", describe(got), err)
	}
	if err := c.DeleteContainer(ctx, ct.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetContainer(ctx, ct.ID); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("GetContainer after delete: %v", err)
	}
}

func TestRunningTaskExecPauseStatsAndKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := connect(t, "tasks")
	ref := busybox(t, c)
	ct, err := c.CreateContainer(ctx, client.ContainerConfig{Image: ref, Args: []string{"sleep", "300"}, Network: "host"}, client.CreateContainerOpts{})
	if err != nil {
		t.Fatal(err)
	}
	removeContainer(t, c, ct.ID)
	if _, err := c.CreateTask(ctx, ct.ID, true); err != nil {
		t.Fatal(err)
	}
	if p, err := c.GetTask(ctx, ct.ID, ""); err != nil || p.Status != client.StatusRunning {
		t.Fatalf("GetTask: %+v %v", p, err)
	}
	if tasks, err := c.ListTasks(ctx); err != nil || len(tasks) != 1 || tasks[0].ContainerID != ct.ID {
		t.Errorf("ListTasks: %+v %v", tasks, err)
	}
	if err := c.DeleteContainer(ctx, ct.ID, false); !errors.Is(err, client.ErrFailedPrecondition) {
		t.Errorf("DeleteContainer of a running container: %v", err)
	}

	execID, err := c.Exec(ctx, ct.ID, client.ExecConfig{Args: []string{"sh", "-c", "echo in-exec $B; exit 4"}, Env: []string{"B=2"}})
	if err != nil || execID == "" {
		t.Fatalf("Exec: %q %v", execID, err)
	}
	var stdout testutil.Buffer
	att, err := c.Attach(ctx, ct.ID, execID, client.AttachOpts{Stdout: &stdout})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartTask(ctx, ct.ID, execID); err != nil {
		t.Fatal(err)
	}
	if p, err := c.WaitTask(ctx, ct.ID, execID); err != nil || p.ExitStatus != 4 || p.ExecID != execID {
		t.Errorf("WaitTask of the exec: %+v %v", p, err)
	}
	if err := att.Wait(); err != nil || stdout.String() != "in-exec 2\n" {
		t.Errorf("exec output %q, %v", stdout.String(), err)
	}
	if _, err := c.DeleteTask(ctx, ct.ID, execID, false); err != nil {
		t.Errorf("DeleteTask of the exec: %v", err)
	}

	if err := c.PauseTask(ctx, ct.ID); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.GetTask(ctx, ct.ID, ""); p.Status != client.StatusPaused {
		t.Errorf("status after pause: %q", p.Status)
	}
	if err := c.ResumeTask(ctx, ct.ID); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.GetTask(ctx, ct.ID, ""); p.Status != client.StatusRunning {
		t.Errorf("status after resume: %q", p.Status)
	}

	if err := c.UpdateTask(ctx, ct.ID, client.Resources{MemoryBytes: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	st, err := c.TaskStats(ctx, ct.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Time.IsZero() || st.PidsCurrent < 1 || st.MemoryLimit != 64<<20 || st.MemoryUsage == 0 {
		t.Errorf("stats: %+v", st)
	}
	top, err := c.TaskTop(ctx, ct.ID)
	if err != nil || len(top) != 1 || !strings.Contains(top[0].Command, "sleep 300") || top[0].PID == 0 {
		t.Errorf("top: %+v %v", top, err)
	}

	if err := c.KillTask(ctx, ct.ID, "", syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if p, err := c.WaitTask(wctx, ct.ID, ""); err != nil || p.ExitStatus != 137 {
		t.Errorf("WaitTask after SIGKILL: %+v %v", p, err)
	}
	if err := c.DeleteContainer(ctx, ct.ID, false); err != nil {
		t.Errorf("DeleteContainer of a stopped container: %v", err)
	}
}

func TestWaitTaskHonoursContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := connect(t, "wait")
	ref := busybox(t, c)
	ct, err := c.CreateContainer(ctx, client.ContainerConfig{Image: ref, Args: []string{"sleep", "300"}, Network: "host"}, client.CreateContainerOpts{})
	if err != nil {
		t.Fatal(err)
	}
	removeContainer(t, c, ct.ID)
	if _, err := c.CreateTask(ctx, ct.ID, true); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := c.WaitTask(wctx, ct.ID, ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitTask past its deadline: %v", err)
	}
	lctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err = c.ContainerLogs(lctx, ct.ID, client.LogsOptions{Follow: true}, func(client.LogEntry) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("following logs past the deadline: %v", err)
	}
}
