package shim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// cgroup2Hybrid is where a hybrid cgroup host mounts its cgroup v2 tree.
const cgroup2Hybrid = "/sys/fs/cgroup/unified"

// ociRuntime invokes one OCI runtime binary (runc or crun) for one
// container. Every invocation gets its own --log file, from which the
// runtime's error message is taken when it fails.
type ociRuntime struct {
	path string // the runtime binary
	// exe, when set, is what is executed instead of path (which stays the
	// name the runtime runs under): a sealed copy of the binary.
	exe    string
	root   string // --root, the runtime's state directory
	logDir string // where the per-invocation log files go; relative paths resolve here
	// spawn starts cmd and returns a channel that receives its wait status.
	// In the shim the reaper does this.
	spawn func(*exec.Cmd) (<-chan unix.WaitStatus, error)
	// hidden, when set, is a thread whose mount namespace lacks the cgroup
	// v2 mount: crun refuses a hybrid layout whose v2 tree holds
	// controllers, so every crun invocation is started from there.
	hidden *hiddenCgroup2
}

// newOCIRuntime returns a runtime for the binary at path. For crun on a
// hybrid cgroup host it sets up the thread that hides the cgroup v2 mount;
// close releases it.
func newOCIRuntime(path, root, logDir string, spawn func(*exec.Cmd) (<-chan unix.WaitStatus, error)) (*ociRuntime, error) {
	r := &ociRuntime{path: path, root: root, logDir: logDir, spawn: spawn}
	if filepath.Base(path) == "crun" && isHybridCgroup() {
		var err error
		if r.hidden, err = newHiddenCgroup2(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *ociRuntime) close() {
	if r.hidden != nil {
		r.hidden.close()
	}
}

// isHybridCgroup reports whether cgroup v1 is mounted at /sys/fs/cgroup with
// the v2 tree beside it at /sys/fs/cgroup/unified.
func isHybridCgroup() bool {
	var st unix.Statfs_t
	if unix.Statfs(cgroup2Hybrid, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		return false
	}
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type != unix.CGROUP2_SUPER_MAGIC
}

// hiddenCgroup2 is one OS thread in a private mount namespace of its own from
// which the cgroup v2 mount is detached. Processes forked from it inherit
// that namespace; the rest of the process, and the host, keep the mount.
// Making the namespace once costs a few milliseconds, which a namespace per
// invocation would pay every time.
type hiddenCgroup2 struct {
	calls chan func()
	done  chan struct{}
}

func newHiddenCgroup2() (*hiddenCgroup2, error) {
	h := &hiddenCgroup2{calls: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(h.done)
		// Never unlocked: when this goroutine returns, Go ends the thread
		// and its namespace with it.
		goruntime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("hide cgroup v2 mount: unshare: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- fmt.Errorf("hide cgroup v2 mount: make mounts private: %w", err)
			return
		}
		if err := unix.Unmount(cgroup2Hybrid, unix.MNT_DETACH); err != nil {
			errc <- fmt.Errorf("hide cgroup v2 mount: unmount %s: %w", cgroup2Hybrid, err)
			return
		}
		errc <- nil
		for f := range h.calls {
			f()
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return h, nil
}

// do runs f on the thread and waits for it.
func (h *hiddenCgroup2) do(f func()) {
	done := make(chan struct{})
	h.calls <- func() {
		defer close(done)
		f()
	}
	<-done
}

func (h *hiddenCgroup2) close() {
	close(h.calls)
	<-h.done
}

// procIO is what a runtime invocation that creates a process gets as its
// stdio (nil means /dev/null) and, with a terminal, its console socket.
type procIO struct {
	stdin, stdout, stderr *os.File
	consoleSocket         string
}

// invoke runs the runtime with args after the global flags and returns an
// error holding the runtime's own message when it fails. op and id name the
// invocation in the error.
func (r *ociRuntime) invoke(op, id string, io *procIO, args ...string) error {
	logf, err := os.CreateTemp(r.logDir, "runtime-*.log")
	if err != nil {
		return fmt.Errorf("%s %q: %w", op, id, err)
	}
	logPath := logf.Name()
	logf.Close()
	defer os.Remove(logPath)

	argv := append([]string{"--root=" + r.root, "--log=" + logPath, "--log-format=json"}, args...)
	exe := r.path
	if r.exe != "" {
		exe = r.exe
	}
	cmd := exec.Command(exe, argv...)
	cmd.Args[0] = r.path
	// Relative paths (console sockets, whose absolute paths may be too long
	// for a socket address) resolve in the log directory, the bundle.
	cmd.Dir = r.logDir
	if io != nil {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = io.stdin, io.stdout, io.stderr
		// An unset *os.File must not become a non-nil io.Reader or io.Writer.
		if io.stdin == nil {
			cmd.Stdin = nil
		}
		if io.stdout == nil {
			cmd.Stdout = nil
		}
		if io.stderr == nil {
			cmd.Stderr = nil
		}
	}
	var ch <-chan unix.WaitStatus
	if r.hidden != nil {
		r.hidden.do(func() { ch, err = r.spawn(cmd) })
	} else {
		ch, err = r.spawn(cmd)
	}
	if err != nil {
		return fmt.Errorf("%s %s %q: %w", filepath.Base(r.path), op, id, err)
	}
	ws := <-ch
	if ws.Exited() && ws.ExitStatus() == 0 {
		return nil
	}
	msg := runtimeError(logPath)
	if msg == "" {
		msg = "exit status " + strconv.Itoa(exitCode(ws))
	}
	return fmt.Errorf("%s %s %q: %s", filepath.Base(r.path), op, id, msg)
}

// runtimeError reads a runtime's JSON log and returns its error messages
// joined by "; ", or, if it logged none at error level, all its messages.
func runtimeError(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var errs, all []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(line, &entry) != nil || entry.Msg == "" {
			all = append(all, string(line))
			continue
		}
		all = append(all, entry.Msg)
		switch entry.Level {
		case "error", "fatal", "panic":
			errs = append(errs, entry.Msg)
		}
	}
	if len(errs) > 0 {
		return strings.Join(errs, "; ")
	}
	return strings.Join(all, "; ")
}

// create runs "runtime create" for the bundle in dir, writing the init's pid
// to pidFile. With op "run" it runs "runtime run --detach" instead, which
// also starts the container.
func (r *ociRuntime) create(op, id, bundle, pidFile string, io *procIO) error {
	args := []string{op}
	if op == "run" {
		args = append(args, "--detach")
	}
	args = append(args, "--bundle="+bundle, "--pid-file="+pidFile)
	if io.consoleSocket != "" {
		args = append(args, "--console-socket="+io.consoleSocket)
	}
	return r.invoke(op, id, io, append(args, id)...)
}

func (r *ociRuntime) start(id string) error { return r.invoke("start", id, nil, "start", id) }

func (r *ociRuntime) kill(id string, sig int) error {
	return r.invoke("kill", id, nil, "kill", id, strconv.Itoa(sig))
}

// killAll signals every process of the container.
func (r *ociRuntime) killAll(id string, sig int) error {
	return r.invoke("kill", id, nil, "kill", "--all", id, strconv.Itoa(sig))
}

func (r *ociRuntime) pause(id string) error  { return r.invoke("pause", id, nil, "pause", id) }
func (r *ociRuntime) resume(id string) error { return r.invoke("resume", id, nil, "resume", id) }

func (r *ociRuntime) update(id, resourcesFile string) error {
	return r.invoke("update", id, nil, "update", "--resources="+resourcesFile, id)
}

// forceDelete kills the container's processes and removes it from the
// runtime. A container the runtime does not know is not an error.
func (r *ociRuntime) forceDelete(id string) error {
	return r.invoke("delete", id, nil, "delete", "--force", id)
}

// exec starts the process described in processFile in the container,
// detached, writing its pid to pidFile.
func (r *ociRuntime) exec(id, processFile, pidFile string, io *procIO) error {
	args := []string{"exec", "--detach", "--pid-file=" + pidFile, "--process=" + processFile}
	if io.consoleSocket != "" {
		args = append(args, "--console-socket="+io.consoleSocket)
	}
	return r.invoke("exec", id, io, append(args, id)...)
}
