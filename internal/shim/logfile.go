package shim

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// The container log is in the Kubernetes CRI format, one entry per line:
//
//	2016-10-06T00:17:09.669794202Z stdout F text
//
// a UTC timestamp with nine fraction digits, the stream, a tag (F for a full
// line, P for a part of a line that was cut at maxLogLine bytes) and the
// text without its newline. A line still open when its stream ends is
// written as F.
const (
	logTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"
	// maxLogLine is the longest text of one entry; longer lines become
	// several entries tagged P, the last one F.
	maxLogLine = 16 << 10
)

// Log streams.
const (
	streamStdout = 0
	streamStderr = 1
)

var streamNames = [2]string{"stdout", "stderr"}

// logFile writes the container's output to a CRI log file and rotates it by
// size: when an entry would make the file exceed maxSize, FILE.(n-2) is
// renamed to FILE.(n-1), …, FILE to FILE.1, and a new FILE is started, so at
// most maxFiles files exist. maxSize 0 turns rotation off (the kubelet rotates
// CRI logs itself, then asks for reopen). It is safe for concurrent use.
type logFile struct {
	path     string
	maxSize  int64
	maxFiles int
	now      func() time.Time

	mu      sync.Mutex
	f       *os.File
	size    int64
	partial [2][]byte // per stream, text of the open line
	buf     []byte    // scratch for one entry
	log     *slog.Logger
	failed  bool // an error was logged since the file was opened
}

// openLogFile opens (appending to) the log at path, creating its directory.
func openLogFile(path string, maxSize int64, maxFiles int, log *slog.Logger) (*logFile, error) {
	if maxFiles < 1 {
		maxFiles = 1
	}
	l := &logFile{path: path, maxSize: maxSize, maxFiles: maxFiles, now: time.Now, log: log}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *logFile) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open container log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open container log: %w", err)
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// write adds output p of stream to the log: every complete line becomes an
// entry; a trailing incomplete line waits for the rest unless it reached
// maxLogLine bytes.
func (l *logFile) write(stream int, p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(p) > 0 {
		part := l.partial[stream]
		room := maxLogLine - len(part)
		i := bytes.IndexByte(p[:min(len(p), room)], '\n')
		if i < 0 && len(p) < room {
			l.partial[stream] = append(part, p...)
			break
		}
		tag, n, skip := byte('F'), i, 1
		if i < 0 {
			tag, n, skip = 'P', room, 0
		}
		text := p[:n]
		if len(part) > 0 {
			text = append(part, text...)
			part = text
		}
		l.entry(stream, tag, text)
		l.partial[stream] = part[:0]
		p = p[n+skip:]
	}
}

// flush writes the open line of stream, if any, as a full entry: the stream
// has ended.
func (l *logFile) flush(stream int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if part := l.partial[stream]; len(part) > 0 {
		l.entry(stream, 'F', part)
		l.partial[stream] = nil
	}
}

// entry writes one log line; l.mu is held.
func (l *logFile) entry(stream int, tag byte, text []byte) {
	b := l.now().UTC().AppendFormat(l.buf[:0], logTimeFormat)
	b = append(b, ' ')
	b = append(b, streamNames[stream]...)
	b = append(b, ' ', tag, ' ')
	b = append(b, text...)
	b = append(b, '\n')
	l.buf = b
	if l.f == nil {
		return
	}
	if l.maxSize > 0 && l.size > 0 && l.size+int64(len(b)) > l.maxSize {
		if err := l.rotate(); err != nil {
			l.fail(err)
		}
		if l.f == nil {
			return
		}
	}
	n, err := l.f.Write(b)
	l.size += int64(n)
	if err != nil {
		l.fail(fmt.Errorf("write container log: %w", err))
	}
}

// fail logs the first error since the file was opened; output keeps
// flowing to attachers.
func (l *logFile) fail(err error) {
	if !l.failed {
		l.failed = true
		l.log.Error("container log", "error", err, "path", l.path)
	}
}

func (l *logFile) rotate() error {
	err := l.f.Close()
	l.f = nil
	for i := l.maxFiles - 1; i >= 1 && err == nil; i-- {
		from := l.path
		if i > 1 {
			from += "." + strconv.Itoa(i-1)
		}
		if err = os.Rename(from, l.path+"."+strconv.Itoa(i)); os.IsNotExist(err) {
			err = nil
		}
	}
	if err == nil && l.maxFiles == 1 {
		err = os.Truncate(l.path, 0)
	}
	if err != nil {
		err = fmt.Errorf("rotate container log: %w", err)
	}
	return errors.Join(err, l.open())
}

// reopen closes the log file and opens the file now at its path, which
// someone else may have renamed away.
func (l *logFile) reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	l.failed = false
	return l.open()
}

func (l *logFile) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
