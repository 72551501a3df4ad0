package diff

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// nobody is the user and group the external decoder runs as when berth runs
// as root: the decoder parses hostile data and needs nothing but its pipes.
const nobody = 65534

// process is a decoder run as a child process: it reads the compressed stream
// from its stdin, which a goroutine feeds, and writes the decompressed stream
// to its stdout.
type process struct {
	name   string
	cmd    *exec.Cmd
	out    *os.File
	stderr capped
	fed    chan error // the feeding goroutine's result
	waited bool
	err    error
}

// startDecoder starts "path -d -c" reading in. It fails only when the
// process cannot be started, and then has consumed nothing from in.
func startDecoder(path string, in io.Reader) (*process, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	growPipe(inW)
	growPipe(outR)
	p := &process{name: path, out: outR, fed: make(chan error, 1)}
	p.cmd = &exec.Cmd{
		Path:   path,
		Args:   []string{path, "-d", "-c"},
		Env:    []string{},
		Dir:    "/",
		Stdin:  inR,
		Stdout: outW,
		Stderr: &p.stderr,
	}
	if os.Geteuid() == 0 {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}},
		}
	}
	err = p.cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	go func() {
		_, err := io.Copy(inW, in)
		inW.Close()
		p.fed <- err
	}()
	return p, nil
}

// growPipe raises the capacity of a pipe to 1 MiB, which halves the cost of
// moving data through it. Failing (pipe-max-size is lower) only costs speed.
func growPipe(f *os.File) {
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, 1<<20) })
	}
}

func (p *process) Read(b []byte) (int, error) {
	n, err := p.out.Read(b)
	if err == io.EOF {
		if werr := p.wait(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// wait reaps the process and the feeding goroutine. A decoder that exits
// before reading all its input (data after the last member) makes the feeder
// fail with EPIPE, which is not an error.
func (p *process) wait() error {
	if p.waited {
		return p.err
	}
	p.waited = true
	ferr := <-p.fed
	werr := p.cmd.Wait()
	switch {
	case werr != nil:
		msg := strings.TrimSpace(p.stderr.String())
		if msg == "" {
			msg = werr.Error()
		}
		p.err = errors.New(msg)
	case ferr != nil && !errors.Is(ferr, syscall.EPIPE):
		p.err = ferr
	}
	return p.err
}

// Close stops the process if it is still running and waits for it.
func (p *process) Close() error {
	if !p.waited {
		_ = p.cmd.Process.Kill()
		_ = p.wait()
	}
	return p.out.Close()
}

// capped keeps the first 4 KiB written to it: the decoder's error message.
type capped struct{ b []byte }

func (t *capped) Write(p []byte) (int, error) {
	if room := 4096 - len(t.b); room > 0 {
		t.b = append(t.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (t *capped) String() string { return string(t.b) }
