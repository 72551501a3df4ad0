package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fakeShim serves the protocol on a Unix socket with handle deciding each
// response. handle may take over the connection for streams.
type fakeShim struct {
	path string
	reqs chan *Request
}

func serveFake(t *testing.T, path string, handle func(*Request, net.Conn, *bufio.Reader) *Response) *fakeShim {
	t.Helper()
	l, err := listenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeShim{path: path, reqs: make(chan *Request, 100)}
	done := make(chan struct{})
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			r := bufio.NewReader(conn)
			line, err := r.ReadBytes('\n')
			if err != nil {
				conn.Close()
				continue
			}
			var req Request
			if err := json.Unmarshal(line, &req); err != nil {
				t.Errorf("fake shim: %v", err)
			}
			f.reqs <- &req
			if resp := handle(&req, conn, r); resp != nil {
				b, _ := json.Marshal(resp)
				_, _ = conn.Write(append(b, '\n'))
				conn.Close()
			}
		}
	}()
	return f
}

// listenUnix listens on path, going through /proc/self/fd when it is too
// long for a socket address, as the shim does by binding a relative path.
func listenUnix(path string) (net.Listener, error) {
	if len(path) <= maxSocketPath {
		return net.Listen("unix", path)
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return net.Listen("unix", fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path)))
}

func TestClientSendsRequestsAndMapsErrors(t *testing.T) {
	exit := Exit{Status: 3, ExitedAt: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), Pid: 42}
	fake := serveFake(t, filepath.Join(t.TempDir(), SocketFile), func(req *Request, _ net.Conn, _ *bufio.Reader) *Response {
		switch req.Method {
		case MethodVersion:
			return &Response{Version: &Version{Protocol: ProtocolVersion, Pid: 7}}
		case MethodState:
			if req.ID == "missing" {
				return &Response{Error: &Error{Code: CodeNotFound, Message: `exec process "missing": not found`}}
			}
			return &Response{State: &State{Status: StatusRunning, Pid: 42}}
		case MethodWait, MethodDelete:
			return &Response{Exit: &exit}
		case MethodStart:
			return &Response{Pid: 43}
		case MethodPause:
			return &Response{Error: &Error{Code: CodeFailedPrecondition, Message: "pause: process is paused: failed precondition"}}
		}
		return &Response{}
	})
	ctx := context.Background()
	c, err := Dial(ctx, fake.path)
	if err != nil {
		t.Fatal(err)
	}
	<-fake.reqs // the version call of Dial

	call := func(name string, err error, want Request) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		got := <-fake.reqs
		if diff := cmp.Diff(want, *got); diff != "" {
			t.Errorf("%s request (-want +got):\n%s", name, diff)
		}
	}
	st, err := c.State(ctx, "")
	call("state", err, Request{Method: MethodState})
	if st.Status != StatusRunning || st.Pid != 42 {
		t.Errorf("state %+v", st)
	}
	pid, err := c.Start(ctx, "e1")
	call("start", err, Request{Method: MethodStart, ID: "e1"})
	if pid != 43 {
		t.Errorf("start pid %d", pid)
	}
	call("kill", c.Kill(ctx, "e1", syscall.SIGTERM), Request{Method: MethodKill, ID: "e1", Signal: 15})
	call("kill all", c.KillAll(ctx, syscall.SIGKILL), Request{Method: MethodKill, Signal: 9, All: true})
	e, err := c.Wait(ctx, "")
	call("wait", err, Request{Method: MethodWait})
	if e != exit {
		t.Errorf("wait %+v, want %+v", e, exit)
	}
	call("resize", c.Resize(ctx, "", 80, 24), Request{Method: MethodResize, Width: 80, Height: 24})
	call("close stdin", c.CloseStdin(ctx, "x"), Request{Method: MethodCloseStdin, ID: "x"})
	call("resume", c.Resume(ctx), Request{Method: MethodResume})
	call("reopen log", c.ReopenLog(ctx), Request{Method: MethodReopenLog})
	limit := int64(1 << 20)
	call("update", c.Update(ctx, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}),
		Request{Method: MethodUpdate, Resources: json.RawMessage(`{"memory":{"limit":1048576}}`)})
	call("exec", c.Exec(ctx, ExecOptions{ID: "e2", Process: &specs.Process{Args: []string{"true"}, Cwd: "/"}, Stdin: true}),
		Request{Method: MethodExec, ID: "e2", Process: json.RawMessage(`{"user":{"uid":0,"gid":0},"args":["true"],"cwd":"/"}`), Stdin: true})
	if _, err := c.Delete(ctx, ""); err != nil {
		t.Error(err)
	}
	<-fake.reqs

	// Errors keep the shim's message and match their code's sentinel.
	_, err = c.State(ctx, "missing")
	<-fake.reqs
	if !errors.Is(err, ErrNotFound) || err.Error() != `exec process "missing": not found` {
		t.Errorf("state of a missing exec: %v", err)
	}
	err = c.Pause(ctx)
	<-fake.reqs
	if !errors.Is(err, ErrFailedPrecondition) || errors.Is(err, ErrNotFound) {
		t.Errorf("pause: %v", err)
	}
}

func TestDialLongSocketPath(t *testing.T) {
	dir := t.TempDir()
	long := filepath.Join(dir, strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(long, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(long, SocketFile)
	if len(path) <= maxSocketPath {
		t.Fatalf("path of %d bytes is not too long for a socket", len(path))
	}
	serveFake(t, path, func(*Request, net.Conn, *bufio.Reader) *Response {
		return &Response{Version: &Version{Protocol: ProtocolVersion}}
	})
	if _, err := Dial(context.Background(), path); err != nil {
		t.Fatal(err)
	}
}

func TestDialDeadShimIsUnavailable(t *testing.T) {
	dir := t.TempDir()
	// A socket nobody listens on any more refuses connections.
	refused := filepath.Join(dir, "refused.sock")
	l, err := net.Listen("unix", refused)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	for _, path := range []string{refused, filepath.Join(dir, "missing.sock")} {
		start := time.Now()
		_, err := Dial(context.Background(), path)
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("dial %s: %v, want unavailable", filepath.Base(path), err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("dial %s took %v", filepath.Base(path), d)
		}
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	fake := serveFake(t, filepath.Join(t.TempDir(), SocketFile), func(req *Request, conn net.Conn, _ *bufio.Reader) *Response {
		return nil // never answer; the client's cancellation closes it
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := NewClient(fake.path).Wait(ctx, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait: %v, want deadline exceeded", err)
	}
}

func TestAttachStream(t *testing.T) {
	got := make(chan string, 10)
	fake := serveFake(t, filepath.Join(t.TempDir(), SocketFile), func(req *Request, conn net.Conn, r *bufio.Reader) *Response {
		b, _ := json.Marshal(&Response{})
		_, _ = conn.Write(append(b, '\n'))
		go func() {
			defer conn.Close()
			buf := make([]byte, MaxFramePayload)
			for i := 0; i < 3; i++ {
				kind, p, err := ReadFrame(r, buf)
				if err != nil {
					got <- err.Error()
					return
				}
				got <- fmt.Sprintf("%d:%q", kind, p)
			}
			_ = WriteFrame(conn, FrameStdout, []byte("out"))
			_ = WriteFrame(conn, FrameStderr, []byte("err"))
			_ = WriteFrame(conn, FrameEnd, nil)
		}()
		return nil
	})
	a, err := NewClient(fake.path).Attach(context.Background(), "e1")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if req := <-fake.reqs; req.Method != MethodAttach || req.ID != "e1" {
		t.Errorf("request %+v", req)
	}
	if _, err := a.Write([]byte("in")); err != nil {
		t.Fatal(err)
	}
	if err := a.Resize(80, 24); err != nil {
		t.Fatal(err)
	}
	if err := a.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`0:"in"`, `5:"\x00P\x00\x18"`, `4:""`} {
		if g := <-got; g != want {
			t.Errorf("shim got frame %s, want %s", g, want)
		}
	}
	var stdout, stderr strings.Builder
	if err := a.Output(&stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "out" || stderr.String() != "err" {
		t.Errorf("output %q %q", stdout.String(), stderr.String())
	}
}
