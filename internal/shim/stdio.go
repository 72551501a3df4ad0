package shim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"

	shimapi "github.com/berth-dev/berth/api/shim/v1"
	"golang.org/x/sys/unix"
)

const (
	// readBufSize is the read buffer of one output stream.
	readBufSize = 8 << 10
	// maxAttachBacklog bounds the output queued for one attacher. An attacher
	// that falls this far behind is dropped so that the container never
	// waits for it.
	maxAttachBacklog = 256 << 10
)

// stdio is the I/O of one process. Without a terminal the shim makes pipes
// and hands their far ends to the runtime, which passes them on to the
// process; with a terminal the runtime sends back the master of the pty it
// made. Pumps copy the output to the log (init only) and to every attacher.
type stdio struct {
	terminal bool
	stdin    bool     // the process reads input from attachers
	log      *logFile // nil for exec processes or without a log path
	logger   *slog.Logger

	// The runtime's stdio for the invocation that creates the process.
	// closeChildEnds drops the shim's copies once the runtime has them.
	child procIO

	// The shim's ends: the stdin writer (pipe or pty master; nil without
	// stdin or once closed) and the output readers (two pipes, or the pty
	// master once).
	inMu sync.Mutex
	in   *os.File
	outs []*os.File
	pty  *os.File

	pumps sync.WaitGroup
	done  chan struct{} // closed when every output stream ended

	mu        sync.Mutex
	attachers map[*attacher]struct{}
	ended     bool
}

// newStdio makes the pipes of a process without a terminal, or prepares for
// a terminal. The caller must call close.
func newStdio(terminal, stdin bool, log *logFile, logger *slog.Logger) (*stdio, error) {
	s := &stdio{terminal: terminal, stdin: stdin, log: log, logger: logger, done: make(chan struct{}), attachers: make(map[*attacher]struct{})}
	if terminal {
		return s, nil
	}
	if stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("make stdin pipe: %w", err)
		}
		s.child.stdin, s.in = r, w
	}
	for _, p := range []**os.File{&s.child.stdout, &s.child.stderr} {
		r, w, err := os.Pipe()
		if err != nil {
			s.close()
			return nil, fmt.Errorf("make output pipe: %w", err)
		}
		*p = w
		s.outs = append(s.outs, r)
	}
	return s, nil
}

// setTerminal installs the pty master the runtime sent.
func (s *stdio) setTerminal(master *os.File) {
	s.pty = master
	s.outs = []*os.File{master}
	if s.stdin {
		s.in = master
	}
}

// closeChildEnds closes the shim's copies of the runtime's stdio, so that
// output ends when the process and its children close theirs.
func (s *stdio) closeChildEnds() {
	for _, f := range []*os.File{s.child.stdin, s.child.stdout, s.child.stderr} {
		if f != nil {
			f.Close()
		}
	}
	s.child = procIO{}
}

// startPumps starts copying output. Without output (the runtime failed) it
// just marks the output ended.
func (s *stdio) startPumps(wg *sync.WaitGroup) {
	kinds := []shimapi.FrameKind{shimapi.FrameStdout, shimapi.FrameStderr}
	for i, f := range s.outs {
		s.pumps.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.pumps.Done()
			s.pump(f, i, kinds[i])
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.pumps.Wait()
		s.end()
	}()
}

func (s *stdio) pump(f *os.File, stream int, kind shimapi.FrameKind) {
	buf := make([]byte, readBufSize)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if s.log != nil {
				s.log.write(stream, buf[:n])
			}
			s.broadcast(kind, buf[:n])
		}
		if err != nil {
			// A pty master reads EIO once the last slave is closed.
			if !errors.Is(err, io.EOF) && !errors.Is(err, unix.EIO) && !errors.Is(err, os.ErrClosed) {
				s.logger.Warn("read process output", "error", err)
			}
			break
		}
	}
	if s.log != nil {
		s.log.flush(stream)
	}
}

func (s *stdio) broadcast(kind shimapi.FrameKind, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.attachers) == 0 {
		return
	}
	frame := shimapi.AppendFrame(nil, kind, p)
	for a := range s.attachers {
		if a.enqueue(frame) {
			continue
		}
		delete(s.attachers, a)
		s.logger.Warn("attach client dropped", "reason", fmt.Sprintf("more than %d bytes of output pending", maxAttachBacklog))
	}
}

// detach forgets an attacher whose connection ended.
func (s *stdio) detach(a *attacher) {
	a.abort()
	s.mu.Lock()
	delete(s.attachers, a)
	s.mu.Unlock()
}

// end tells every attacher that output ended. It is called when the pumps
// finished, or for a process that never ran.
func (s *stdio) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	for a := range s.attachers {
		a.finish()
	}
	clear(s.attachers)
	close(s.done)
}

// attach serves an attach connection: the response line goes out first,
// then output as frames until it ends, and frames coming in are applied to
// the process. It returns at once; the goroutines it starts are counted in
// wg and end when the connection or the output ends.
func (s *stdio) attach(conn net.Conn, r *bufio.Reader, p *process, response []byte, wg *sync.WaitGroup) {
	a := &attacher{conn: conn, wake: make(chan struct{}, 1), queue: response}
	a.signal()
	s.mu.Lock()
	if s.ended {
		a.finish()
	} else {
		s.attachers[a] = struct{}{}
	}
	s.mu.Unlock()
	wg.Add(2)
	go func() {
		defer wg.Done()
		a.writeLoop()
	}()
	go func() {
		defer wg.Done()
		s.readLoop(r, p)
		// The client closed its side: the attach is over.
		s.detach(a)
	}()
}

// readLoop applies the frames an attacher sends until its connection ends.
func (s *stdio) readLoop(r *bufio.Reader, p *process) {
	buf := make([]byte, shimapi.MaxFramePayload)
	for {
		kind, payload, err := shimapi.ReadFrame(r, buf)
		if err != nil {
			return
		}
		switch kind {
		case shimapi.FrameStdin:
			err = s.writeStdin(payload)
		case shimapi.FrameCloseStdin:
			err = s.closeStdin()
		case shimapi.FrameResize:
			var w, h uint16
			if w, h, err = shimapi.ParseResize(payload); err == nil {
				err = s.resize(w, h)
			}
		default:
			err = fmt.Errorf("unexpected frame kind %d", kind)
		}
		if err != nil {
			s.logger.Debug("attach input", "exec_id", p.id, "error", err)
		}
	}
}

func (s *stdio) writeStdin(p []byte) error {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	if s.in == nil {
		return fmt.Errorf("write stdin: stdin is closed or was not requested: %w", shimapi.ErrFailedPrecondition)
	}
	_, err := s.in.Write(p)
	return err
}

// closeStdin closes the process's stdin. On a terminal, which stays open for
// output, it sends end-of-file (^D) instead.
func (s *stdio) closeStdin() error {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	if s.in == nil {
		return nil
	}
	var err error
	if s.terminal {
		_, err = s.in.Write([]byte{4})
	} else {
		err = s.in.Close()
	}
	s.in = nil
	return err
}

func (s *stdio) resize(width, height uint16) error {
	if s.pty == nil {
		return fmt.Errorf("resize: process has no terminal: %w", shimapi.ErrFailedPrecondition)
	}
	rc, err := s.pty.SyscallConn()
	if err != nil {
		return err
	}
	var ioctlErr error
	err = rc.Control(func(fd uintptr) {
		ioctlErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: width, Row: height})
	})
	return errors.Join(err, ioctlErr)
}

// close releases every descriptor and drops the attachers. Pumps end on
// their own when the process's output ends; close is for after that, or for
// a process that never started.
func (s *stdio) close() {
	s.closeChildEnds()
	s.inMu.Lock()
	if s.in != nil && s.in != s.pty {
		s.in.Close()
	}
	s.in = nil
	s.inMu.Unlock()
	for _, f := range s.outs {
		f.Close()
	}
	s.mu.Lock()
	for a := range s.attachers {
		a.abort()
	}
	clear(s.attachers)
	s.mu.Unlock()
}

// attacher is one attach connection: a bounded queue of encoded frames and
// a goroutine writing them out.
type attacher struct {
	conn net.Conn
	wake chan struct{}

	mu      sync.Mutex
	queue   []byte
	ended   bool // output ended: write FrameEnd after the queue, then close
	aborted bool // close without flushing
}

// enqueue adds an encoded frame; false means the attacher fell too far
// behind and was aborted.
func (a *attacher) enqueue(frame []byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.aborted {
		return true // detach removes it
	}
	if len(a.queue)+len(frame) > maxAttachBacklog {
		a.aborted = true
		a.conn.Close()
		return false
	}
	a.queue = append(a.queue, frame...)
	a.signal()
	return true
}

func (a *attacher) finish() {
	a.mu.Lock()
	a.ended = true
	a.signal()
	a.mu.Unlock()
}

func (a *attacher) abort() {
	a.mu.Lock()
	a.aborted = true
	a.conn.Close()
	a.signal()
	a.mu.Unlock()
}

func (a *attacher) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *attacher) writeLoop() {
	defer a.conn.Close()
	var spare []byte
	for range a.wake {
		a.mu.Lock()
		out, ended, aborted := a.queue, a.ended, a.aborted
		a.queue = spare[:0]
		a.mu.Unlock()
		if aborted {
			return
		}
		if len(out) > 0 {
			if _, err := a.conn.Write(out); err != nil {
				a.abort()
				return
			}
		}
		if ended {
			_ = shimapi.WriteFrame(a.conn, shimapi.FrameEnd, nil)
			return
		}
		spare = out
	}
}
