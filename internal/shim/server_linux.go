package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	shimapi "github.com/berth-dev/berth/api/shim/v1"
)

const (
	// maxRequest bounds a request line (an exec's process spec is the
	// largest part).
	maxRequest = 1 << 20
	// requestTimeout bounds how long a new connection may take to send its
	// request.
	requestTimeout = 10 * time.Second
	// shutdownTimeout bounds the wait for goroutines when the shim exits.
	shutdownTimeout = 5 * time.Second
)

// serve accepts connections until l is closed.
func (s *service) serve(l *net.UnixListener) {
	for {
		conn, err := l.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("accept", "error", err)
			}
			return
		}
		if !s.track(conn) {
			conn.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if !s.handle(conn) {
				s.untrack(conn)
				conn.Close()
			}
		}()
	}
}

// track records an open connection so that shutdown can close it; false
// means the shim is shutting down.
func (s *service) track(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		return false
	}
	s.conns[conn] = struct{}{}
	return true
}

func (s *service) untrack(conn net.Conn) {
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
}

// handle serves one call. It returns true when the connection went on as an
// attach stream, which then owns it.
func (s *service) handle(conn *net.UnixConn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(requestTimeout))
	r := bufio.NewReaderSize(conn, 4096)
	req, err := readRequest(r)
	if err != nil {
		_, _ = conn.Write(encodeResponse(&shimapi.Response{Error: shimapi.ToError(err)}))
		return false
	}
	_ = conn.SetReadDeadline(time.Time{})
	start := time.Now()
	resp, attach := s.dispatch(r, req)
	if resp.Error != nil {
		s.log.Debug("call", "method", req.Method, "exec_id", req.ID, "duration", time.Since(start), "error", resp.Error.Message)
	} else {
		s.log.Debug("call", "method", req.Method, "exec_id", req.ID, "duration", time.Since(start))
	}
	if attach != nil {
		// The attach stream owns the connection now. It is registered
		// before the response goes out (first in its queue), so the client
		// sees all output written after it got the response.
		s.untrack(conn)
		attach.io.attach(conn, r, attach, encodeResponse(resp), &s.wg)
		return true
	}
	_, err = conn.Write(encodeResponse(resp))
	if req.Method == shimapi.MethodDelete && req.ID == "" && resp.Error == nil {
		// The init is gone and the caller has its exit: shut down.
		s.stopOnce.Do(func() { close(s.deleted) })
	}
	if err != nil {
		s.log.Debug("reply", "method", req.Method, "error", err)
	}
	return false
}

func readRequest(r *bufio.Reader) (*shimapi.Request, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxRequest {
			return nil, fmt.Errorf("request longer than %d bytes: %w", maxRequest, shimapi.ErrInvalidArgument)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("read request: %w", err)
		}
	}
	var req shimapi.Request
	if err := json.Unmarshal(line, &req); err != nil {
		return nil, fmt.Errorf("decode request: %v: %w", err, shimapi.ErrInvalidArgument)
	}
	return &req, nil
}

// encodeResponse returns the response line.
func encodeResponse(resp *shimapi.Response) []byte {
	b, err := json.Marshal(resp)
	if err != nil {
		b, _ = json.Marshal(&shimapi.Response{Error: shimapi.ToError(err)})
	}
	return append(b, '\n')
}

// dispatch performs one request. For an attach it returns the process the
// connection is to be attached to once the response is sent.
func (s *service) dispatch(r *bufio.Reader, req *shimapi.Request) (*shimapi.Response, *process) {
	fail := func(err error) (*shimapi.Response, *process) {
		return &shimapi.Response{Error: shimapi.ToError(err)}, nil
	}
	ok := func() (*shimapi.Response, *process) { return &shimapi.Response{}, nil }

	if req.Method == shimapi.MethodVersion {
		return &shimapi.Response{Version: &shimapi.Version{
			Version: s.cfg.Version, Protocol: shimapi.ProtocolVersion, Pid: os.Getpid(), Runtime: s.cfg.Runtime,
		}}, nil
	}
	if req.Method == shimapi.MethodExec {
		if err := s.addExec(req.ID, req.Process, req.Stdin); err != nil {
			return fail(err)
		}
		return ok()
	}
	p, err := s.lookup(req.ID)
	if err != nil {
		return fail(err)
	}
	initOnly := func(method string) error {
		if req.ID != "" {
			return fmt.Errorf("%s applies to the container, not exec process %q: %w", method, req.ID, shimapi.ErrInvalidArgument)
		}
		return nil
	}

	switch req.Method {
	case shimapi.MethodState:
		return &shimapi.Response{State: s.state(p)}, nil
	case shimapi.MethodStart:
		pid, err := s.start(p)
		if err != nil {
			return fail(err)
		}
		return &shimapi.Response{Pid: pid}, nil
	case shimapi.MethodKill:
		err = s.kill(p, req.Signal, req.All)
	case shimapi.MethodPause, shimapi.MethodResume:
		if err = initOnly(req.Method); err == nil {
			o := opPause
			if req.Method == shimapi.MethodResume {
				o = opResume
			}
			err = s.pauseOrResume(p, o)
		}
	case shimapi.MethodUpdate:
		if err = initOnly(req.Method); err == nil {
			err = s.update(p, req.Resources)
		}
	case shimapi.MethodWait:
		e, err := s.wait(p, s.clientGone(r))
		if err != nil {
			return fail(err)
		}
		return &shimapi.Response{Exit: e}, nil
	case shimapi.MethodDelete:
		e, err := s.deleteProcess(p)
		if err != nil {
			return fail(err)
		}
		return &shimapi.Response{Exit: e}, nil
	case shimapi.MethodResize:
		err = p.io.resize(req.Width, req.Height)
	case shimapi.MethodCloseStdin:
		err = p.io.closeStdin()
	case shimapi.MethodReopenLog:
		if err = initOnly(req.Method); err == nil {
			if p.io.log == nil {
				err = fmt.Errorf("reopen log: the container has no log: %w", shimapi.ErrFailedPrecondition)
			} else {
				err = p.io.log.reopen()
			}
		}
	case shimapi.MethodAttach:
		return &shimapi.Response{}, p
	default:
		err = fmt.Errorf("method %q: %w", req.Method, shimapi.ErrNotImplemented)
	}
	if err != nil {
		return fail(err)
	}
	return ok()
}

// clientGone returns a channel closed when the client closes its side of
// the connection while a call blocks. The goroutine reading it ends then, or
// when the connection is closed after the reply.
func (s *service) clientGone(r *bufio.Reader) <-chan struct{} {
	gone := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(gone)
		var b [1]byte
		_, _ = r.Read(b[:])
	}()
	return gone
}

// shutdown stops serving: the socket goes, open calls end, and the shim
// waits (boundedly) for its goroutines.
func (s *service) shutdown(l *net.UnixListener) {
	l.Close() // also removes the socket file
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.conns = nil
	procs := s.procs
	s.mu.Unlock()
	for _, p := range procs {
		p.io.close()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(shutdownTimeout):
		s.log.Warn("shim exits with goroutines still running")
	}
	for _, p := range procs {
		if p.io.log != nil {
			p.io.log.close()
		}
	}
}
