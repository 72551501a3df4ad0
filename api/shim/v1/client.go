package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// maxSocketPath is the longest path a Unix socket address holds (sun_path
// less its terminating NUL). Longer paths are reached through /proc/self/fd.
const maxSocketPath = 107

// Client calls one shim. It holds only the socket path: every call opens its
// own connection, so a Client is safe for concurrent use and needs no Close.
// Each method's ctx bounds the call; for a blocking call (Wait) cancelling ctx
// abandons the wait, not the process.
type Client struct {
	path string
}

// NewClient returns a client for the shim listening on socketPath. It does no
// I/O; see Dial.
func NewClient(socketPath string) *Client { return &Client{path: socketPath} }

// Dial returns a client for the shim listening on socketPath once the shim has
// answered a version call. A dead shim fails fast with ErrUnavailable: its
// socket refuses connections or is gone.
func Dial(ctx context.Context, socketPath string) (*Client, error) {
	c := NewClient(socketPath)
	if _, err := c.Version(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// SocketPath returns the path of the shim's socket.
func (c *Client) SocketPath() string { return c.path }

// Version returns the shim's build, protocol version and pid. It doubles as a
// ping.
func (c *Client) Version(ctx context.Context) (Version, error) {
	resp, err := c.call(ctx, &Request{Method: MethodVersion})
	if err != nil {
		return Version{}, err
	}
	if resp.Version == nil {
		return Version{}, errMissing(MethodVersion, "version")
	}
	return *resp.Version, nil
}

// State returns the state of the init (id "") or of exec process id.
func (c *Client) State(ctx context.Context, id string) (State, error) {
	resp, err := c.call(ctx, &Request{Method: MethodState, ID: id})
	if err != nil {
		return State{}, err
	}
	if resp.State == nil {
		return State{}, errMissing(MethodState, "state")
	}
	return *resp.State, nil
}

// Start starts the created init (id "") or exec process id and returns its pid.
func (c *Client) Start(ctx context.Context, id string) (int, error) {
	resp, err := c.call(ctx, &Request{Method: MethodStart, ID: id})
	if err != nil {
		return 0, err
	}
	return resp.Pid, nil
}

// Kill sends sig to the init (id "") or to exec process id. Killing a
// process that has exited fails with ErrNotFound.
func (c *Client) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	_, err := c.call(ctx, &Request{Method: MethodKill, ID: id, Signal: int(sig)})
	return err
}

// KillAll sends sig to every process of the container. It fails with
// ErrNotFound once the init has exited.
func (c *Client) KillAll(ctx context.Context, sig syscall.Signal) error {
	_, err := c.call(ctx, &Request{Method: MethodKill, Signal: int(sig), All: true})
	return err
}

// Pause freezes every process of the container.
func (c *Client) Pause(ctx context.Context) error {
	_, err := c.call(ctx, &Request{Method: MethodPause})
	return err
}

// Resume thaws a paused container.
func (c *Client) Resume(ctx context.Context) error {
	_, err := c.call(ctx, &Request{Method: MethodResume})
	return err
}

// Wait blocks until the init (id "") or exec process id has exited and
// returns how. It returns at once for a process that already exited. For the
// init, the exit record DIR/exit is on disk before Wait returns.
func (c *Client) Wait(ctx context.Context, id string) (Exit, error) {
	resp, err := c.call(ctx, &Request{Method: MethodWait, ID: id})
	if err != nil {
		return Exit{}, err
	}
	if resp.Exit == nil {
		return Exit{}, errMissing(MethodWait, "exit")
	}
	return *resp.Exit, nil
}

// ExecOptions describes a process to add to a running container.
type ExecOptions struct {
	ID      string         // unique within the container: [A-Za-z0-9_.-], at most 64 bytes
	Process *specs.Process // Process.Terminal selects a terminal
	Stdin   bool           // keep a stdin open for attachers
}

// Exec adds a process to the container in status created. Attach to it
// before Start to receive all of its output.
func (c *Client) Exec(ctx context.Context, opts ExecOptions) error {
	if opts.Process == nil {
		return fmt.Errorf("exec %q: no process: %w", opts.ID, ErrInvalidArgument)
	}
	p, err := json.Marshal(opts.Process)
	if err != nil {
		return fmt.Errorf("exec %q: encode process: %w", opts.ID, err)
	}
	_, err = c.call(ctx, &Request{Method: MethodExec, ID: opts.ID, Process: p, Stdin: opts.Stdin})
	return err
}

// Resize sets the terminal size of the init (id "") or of exec process id.
func (c *Client) Resize(ctx context.Context, id string, width, height uint16) error {
	_, err := c.call(ctx, &Request{Method: MethodResize, ID: id, Width: width, Height: height})
	return err
}

// CloseStdin closes the stdin of the init (id "") or of exec process id.
func (c *Client) CloseStdin(ctx context.Context, id string) error {
	_, err := c.call(ctx, &Request{Method: MethodCloseStdin, ID: id})
	return err
}

// Update changes the container's resource limits (runtime update).
func (c *Client) Update(ctx context.Context, resources *specs.LinuxResources) error {
	r, err := json.Marshal(resources)
	if err != nil {
		return fmt.Errorf("update: encode resources: %w", err)
	}
	_, err = c.call(ctx, &Request{Method: MethodUpdate, Resources: r})
	return err
}

// Delete removes the exited init (id "") or exec process id and returns how
// it exited. Deleting the init also removes the container from the runtime;
// the shim then removes its socket and exits. A created init is killed
// first; a running or paused one is refused with ErrFailedPrecondition.
func (c *Client) Delete(ctx context.Context, id string) (Exit, error) {
	resp, err := c.call(ctx, &Request{Method: MethodDelete, ID: id})
	if err != nil {
		return Exit{}, err
	}
	if resp.Exit == nil {
		return Exit{}, errMissing(MethodDelete, "exit")
	}
	return *resp.Exit, nil
}

// ReopenLog closes and reopens the container log file, after someone else
// renamed it (CRI ReopenContainerLog).
func (c *Client) ReopenLog(ctx context.Context) error {
	_, err := c.call(ctx, &Request{Method: MethodReopenLog})
	return err
}

// Attach opens a stream to the init (id "") or exec process id: it carries
// what the process writes from now on, and stdin, stdin close and resize the
// other way. ctx bounds the whole stream. Several attachers may be open at
// once; one that reads too slowly is dropped by the shim rather than slowing
// the container.
func (c *Client) Attach(ctx context.Context, id string) (*Attach, error) {
	conn, r, _, err := c.open(ctx, &Request{Method: MethodAttach, ID: id})
	if err != nil {
		return nil, err
	}
	// The stream outlives the call's deadline but not ctx.
	_ = conn.SetDeadline(time.Time{})
	a := &Attach{conn: conn, r: r}
	a.stop = context.AfterFunc(ctx, func() { conn.Close() })
	return a, nil
}

// Attach is an open attach stream. Output is for one goroutine; Write,
// CloseStdin and Resize may be called from another, concurrently.
type Attach struct {
	conn net.Conn
	r    *bufio.Reader
	stop func() bool
	wmu  sync.Mutex
}

// Output copies the process's output to stdout and stderr (stderr may be nil
// for a terminal, whose output is all stdout) until the process's output ends,
// then returns nil.
func (a *Attach) Output(stdout, stderr io.Writer) error {
	buf := make([]byte, MaxFramePayload)
	for {
		kind, p, err := ReadFrame(a.r, buf)
		if err != nil {
			return fmt.Errorf("attach: read output: %w", err)
		}
		var w io.Writer
		switch kind {
		case FrameStdout:
			w = stdout
		case FrameStderr:
			w = stderr
		case FrameEnd:
			return nil
		default:
			return fmt.Errorf("attach: unexpected frame kind %d", kind)
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
}

// Write sends p to the process's stdin.
func (a *Attach) Write(p []byte) (int, error) {
	if err := a.send(FrameStdin, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseStdin closes the process's stdin (for every attacher).
func (a *Attach) CloseStdin() error { return a.send(FrameCloseStdin, nil) }

// Resize sets the process's terminal size.
func (a *Attach) Resize(width, height uint16) error {
	return a.send(FrameResize, ResizePayload(width, height))
}

// Close ends the stream. The process keeps running.
func (a *Attach) Close() error {
	a.stop()
	return a.conn.Close()
}

func (a *Attach) send(kind FrameKind, p []byte) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if err := WriteFrame(a.conn, kind, p); err != nil {
		return fmt.Errorf("attach: send: %w", err)
	}
	return nil
}

// call performs one request and closes the connection.
func (c *Client) call(ctx context.Context, req *Request) (*Response, error) {
	conn, _, resp, err := c.open(ctx, req)
	if err != nil {
		return nil, err
	}
	conn.Close()
	return resp, nil
}

// open connects, sends req and reads the response line. On success the
// connection is left open, with r holding any bytes read past the line.
func (c *Client) open(ctx context.Context, req *Request) (net.Conn, *bufio.Reader, *Response, error) {
	conn, err := dial(ctx, c.path)
	if err != nil {
		return nil, nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	resp, r, err := roundTrip(conn, req)
	if err != nil {
		conn.Close()
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			// The connection's deadline may fire before ctx's timer.
			err = context.DeadlineExceeded
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, nil, nil, fmt.Errorf("shim %s: %w", req.Method, err)
	}
	if resp.Error != nil {
		conn.Close()
		return nil, nil, nil, resp.Error
	}
	return conn, r, resp, nil
}

func roundTrip(conn net.Conn, req *Request) (*Response, *bufio.Reader, error) {
	line, err := json.Marshal(req)
	if err != nil {
		return nil, nil, err
	}
	if _, err := conn.Write(append(line, '\n')); err != nil {
		return nil, nil, unavailablef("send request: %v", err)
	}
	r := bufio.NewReaderSize(conn, 4096)
	line, err = r.ReadBytes('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, unavailablef("connection closed before the response")
		}
		return nil, nil, err
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, nil, fmt.Errorf("decode response: %w", err)
	}
	return &resp, r, nil
}

// dial connects to the socket at path. A path too long for a socket address
// is reached through /proc/self/fd and a descriptor of its directory.
func dial(ctx context.Context, path string) (net.Conn, error) {
	addr := path
	if len(path) > maxSocketPath {
		dir, err := os.Open(filepath.Dir(path))
		if err != nil {
			return nil, unavailablef("dial shim %s: %v", path, err)
		}
		defer dir.Close()
		addr = fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path))
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("dial shim %s: %w", path, ctx.Err())
		}
		return nil, unavailablef("dial shim %s: %v", path, err)
	}
	return conn, nil
}

func errMissing(method, field string) error {
	return fmt.Errorf("shim %s: response without %s", method, field)
}

// ReadExit reads the durable exit record DIR/exit of the init that the shim
// of task directory dir wrote. When there is none the error wraps
// fs.ErrNotExist.
func ReadExit(dir string) (Exit, error) {
	b, err := os.ReadFile(filepath.Join(dir, ExitFile))
	if err != nil {
		return Exit{}, err
	}
	var e Exit
	if err := json.Unmarshal(b, &e); err != nil {
		return Exit{}, fmt.Errorf("decode exit record %s: %w", filepath.Join(dir, ExitFile), err)
	}
	return e, nil
}
