// Package logs reads container logs: the files the shim writes in the
// Kubernetes CRI log format, one entry per line,
//
//	2016-10-06T00:17:09.669794202Z stdout F text
//
// where the tag is F for a full line and P for a partial one (a long line
// split by the writer). A log is FILE plus the rotated FILE.1 … FILE.N,
// FILE.N the oldest. Package logs selects entries by time and count and
// follows a log as it grows and rotates. It never writes logs (the shim
// does) and knows nothing of tasks: a follower is told when the writer is
// gone.
package logs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Entry is one log line.
type Entry struct {
	Time   time.Time
	Stream string // "stdout" or "stderr"
	// Partial is set when Data is the first part of a line the writer split;
	// Data then has no newline.
	Partial bool
	// Data is the text, with its newline unless Partial.
	Data []byte
}

// ParseLine decodes one line of a CRI log (without its newline).
func ParseLine(line []byte) (Entry, error) {
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	stream, rest2, ok2 := bytes.Cut(rest, []byte{' '})
	tag, text, ok3 := bytes.Cut(rest2, []byte{' '})
	if !ok || !ok2 {
		return Entry{}, fmt.Errorf("log line %.40q: want TIME STREAM TAG TEXT: %w", line, errdefs.ErrInvalidArgument)
	}
	if !ok3 { // an empty partial text may lack the separator
		tag, text = rest2, nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return Entry{}, fmt.Errorf("log line %.40q: time: %w", line, errdefs.ErrInvalidArgument)
	}
	e := Entry{Time: t, Stream: string(stream)}
	switch string(tag) {
	case "P":
		e.Partial = true
		e.Data = append([]byte(nil), text...)
	case "F":
		e.Data = append(append([]byte(nil), text...), '\n')
	default:
		return Entry{}, fmt.Errorf("log line %.40q: tag %q: want F or P: %w", line, tag, errdefs.ErrInvalidArgument)
	}
	return e, nil
}

// Options select what Read returns.
type Options struct {
	// Tail keeps only the last Tail lines (a line is a run of partial
	// entries ended by a full one); negative means all.
	Tail int64
	// Since and Until bound entry times; zero means unbounded.
	Since, Until time.Time
	// Follow keeps reading as the log grows, until ctx ends or Done closes.
	Follow bool
	// Done is closed when the writer has exited; a follower then drains what
	// is left and returns. Nil means the writer is gone already.
	Done <-chan struct{}
	// PollInterval is how often a follower looks for new lines (default
	// 100ms).
	PollInterval time.Duration
}

// Read calls fn for each entry of the log at path that opts select, oldest
// first. A log that does not exist yet has no entries. fn's error stops
// Read and is returned.
func Read(ctx context.Context, path string, opts Options, fn func(Entry) error) error {
	var tail *ring
	if opts.Tail >= 0 {
		tail = &ring{max: int(opts.Tail)}
	}
	emit := func(e Entry) error {
		if !opts.Since.IsZero() && e.Time.Before(opts.Since) {
			return nil
		}
		if !opts.Until.IsZero() && e.Time.After(opts.Until) {
			return nil
		}
		if tail != nil {
			tail.add(e)
			return nil
		}
		return fn(e)
	}
	for _, p := range rotated(path) {
		if err := readFile(p, emit); err != nil {
			return err
		}
	}
	f := &follower{path: path}
	defer f.close()
	if err := f.open(); err != nil {
		return err
	}
	if err := f.drain(emit); err != nil {
		return err
	}
	if tail != nil {
		for _, e := range tail.entries() {
			if err := fn(e); err != nil {
				return err
			}
		}
		tail = nil
	}
	if !opts.Follow {
		return nil
	}
	done := opts.Done
	if done == nil {
		return nil
	}
	interval := opts.PollInterval
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	timer := time.NewTicker(interval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return f.drain(emit)
		case <-timer.C:
			if err := f.drain(emit); err != nil {
				return err
			}
		}
	}
}

// rotated lists the rotated files of path that exist, oldest first.
func rotated(path string) []string {
	var out []string
	for i := 1; ; i++ {
		p := path + "." + strconv.Itoa(i)
		if _, err := os.Stat(p); err != nil {
			break
		}
		out = append([]string{p}, out...)
	}
	return out
}

func readFile(path string, emit func(Entry) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // rotated away meanwhile
	} else if err != nil {
		return err
	}
	defer f.Close()
	return scan(f, emit)
}

func scan(r io.Reader, emit func(Entry) error) error {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		e, err := ParseLine(s.Bytes())
		if err != nil {
			continue // a torn line from a crash is skipped, not fatal
		}
		if err := emit(e); err != nil {
			return err
		}
	}
	return s.Err()
}

// follower reads the live file from where it left off, and notices when
// the writer rotated it (the path then names a new file).
type follower struct {
	path    string
	f       *os.File
	partial []byte // bytes after the last newline seen
}

func (f *follower) open() error {
	file, err := os.Open(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	f.f = file
	return err
}

func (f *follower) close() {
	if f.f != nil {
		f.f.Close()
	}
}

// drain emits the complete lines appended since the last call, following a
// rotation to the new file.
func (f *follower) drain(emit func(Entry) error) error {
	for {
		if f.f == nil {
			if err := f.open(); err != nil || f.f == nil {
				return err
			}
		}
		if err := f.readLines(emit); err != nil {
			return err
		}
		st, err := os.Stat(f.path)
		cur, err2 := f.f.Stat()
		if err != nil || err2 != nil || os.SameFile(st, cur) {
			return nil
		}
		// Rotated: what is left in the old file was read above; go on with
		// the new one.
		f.f.Close()
		f.f, f.partial = nil, nil
	}
}

func (f *follower) readLines(emit func(Entry) error) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := f.f.Read(buf)
		if n > 0 {
			data := append(f.partial, buf[:n]...)
			last := bytes.LastIndexByte(data, '\n')
			if last < 0 {
				f.partial = data
			} else {
				f.partial = append([]byte(nil), data[last+1:]...)
				if err := scan(bytes.NewReader(data[:last+1]), emit); err != nil {
					return err
				}
			}
		}
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// ring keeps the last max lines, where a line is a run of partial entries
// ended by a full one.
type ring struct {
	max   int
	lines [][]Entry
	open  []Entry
}

func (r *ring) add(e Entry) {
	r.open = append(r.open, e)
	if e.Partial {
		return
	}
	r.lines = append(r.lines, r.open)
	r.open = nil
	if len(r.lines) > r.max {
		r.lines = r.lines[len(r.lines)-r.max:]
	}
}

func (r *ring) entries() []Entry {
	var out []Entry
	for _, l := range r.lines {
		out = append(out, l...)
	}
	return append(out, r.open...)
}
