package diff

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
)

// The reader hands entries over in batches: one handover per entry would
// cost a goroutine wakeup each. A batch holds up to batchLen entries, and
// the content of its files of up to maxBuffered bytes in an arena of
// batchBytes; a larger file ends its batch and streams through a pipe. At
// most readAhead batches wait for the applier, so an Apply holds about
// (readAhead+2) * batchBytes of content.
const (
	batchLen    = 64
	batchBytes  = 4 << 20
	maxBuffered = 256 << 10
	readAhead   = 2
)

// reader decompresses, hashes and parses a layer in its own goroutine, ahead
// of the goroutine that applies the entries: the CPU work of reading overlaps
// the file system calls of applying. It never touches the file system.
type reader struct {
	batches chan *batch
	free    chan *batch   // batches the applier is done with
	done    chan struct{} // closed by stop
	exit    chan struct{} // closed when the goroutine returns

	// Set before batches is closed.
	diffID  digest.Digest
	size    int64
	entries int
	err     error
}

type batch struct {
	items []item
	arena []byte // the content of the items' data
}

// item is an entry with its content: data for a small file, pipe for a large
// one, or err, the last item, when the layer cannot be read.
type item struct {
	e    *entry
	data []byte
	pipe *io.PipeReader
	err  error
}

// discard releases the item's pipe, if any, so that the reader goroutine
// does not wait for the rest of the content to be read.
func (it item) discard() {
	if it.pipe != nil {
		it.pipe.CloseWithError(errStopped)
	}
}

var errStopped = errors.New("apply stopped")

func startReader(r io.Reader, lim Limits) *reader {
	rd := &reader{
		batches: make(chan *batch, readAhead),
		free:    make(chan *batch, readAhead+2),
		done:    make(chan struct{}),
		exit:    make(chan struct{}),
	}
	go rd.run(r, lim)
	return rd
}

// stop makes the goroutine return, if it has not yet, and waits for it.
func (rd *reader) stop() {
	select {
	case <-rd.done:
	default:
		close(rd.done)
	}
	for b := range rd.batches {
		b.discard()
	}
	<-rd.exit
}

func (b *batch) discard() {
	for _, it := range b.items {
		it.discard()
	}
}

// release gives a batch the applier is done with back for reuse.
func (rd *reader) release(b *batch) {
	b.items, b.arena = b.items[:0], b.arena[:0]
	select {
	case rd.free <- b:
	default:
	}
}

func (rd *reader) newBatch() *batch {
	select {
	case b := <-rd.free:
		return b
	default:
		return &batch{items: make([]item, 0, batchLen), arena: make([]byte, 0, batchBytes)}
	}
}

// send hands b to the applier, unless stop was called.
func (rd *reader) send(b *batch) bool {
	select {
	case <-rd.done:
	default:
		select {
		case rd.batches <- b:
			return true
		case <-rd.done:
		}
	}
	b.discard()
	return false
}

func (rd *reader) run(r io.Reader, lim Limits) {
	defer close(rd.exit)
	defer close(rd.batches)
	c := &counter{r: r, h: sha256.New(), max: lim.MaxBytes, done: rd.done}
	// archive/tar reads headers 512 bytes at a time: the buffer saves a
	// read(2) from the decoder's pipe per header.
	br := bufio.NewReaderSize(c, 1<<20)
	tr := tar.NewReader(br)
	b := rd.newBatch()
	fail := func(err error) {
		rd.err = err
		b.items = append(b.items, item{err: err})
		rd.send(b)
	}
	// readErr classifies an error reading the tar: the counter's own
	// (limit, source, decoder) or a defect of the tar.
	readErr := func(err error) error {
		if c.err != nil {
			return c.err
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	last := ""
	content := int64(0) // bytes of the files made so far, sparse files expanded
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(fmt.Errorf("read entry after %s: %w", quote(last), readErr(err)))
			return
		}
		rd.entries++
		last = hdr.Name
		if rd.entries > lim.MaxEntries {
			fail(exceeded(fmt.Sprintf("entry %s", quote(hdr.Name)), "MaxEntries", int64(lim.MaxEntries)))
			return
		}
		e, err := parseEntry(hdr, lim)
		if err != nil {
			fail(err)
			return
		}
		if e == nil {
			continue
		}
		// A sparse file expands to its logical size: count that, not the
		// bytes it takes in the stream.
		if content += e.size; content > lim.MaxBytes {
			fail(exceeded(fmt.Sprintf("entry %s: content of %d bytes", quote(hdr.Name), e.size), "MaxBytes", lim.MaxBytes))
			return
		}
		it := item{e: e}
		var pw *io.PipeWriter
		switch {
		case e.kind != kindFile || e.size == 0:
		case e.size <= maxBuffered:
			if n := len(b.arena); n+int(e.size) > cap(b.arena) {
				if !rd.send(b) {
					return
				}
				b = rd.newBatch()
			}
			n := len(b.arena)
			b.arena = b.arena[:n+int(e.size)]
			it.data = b.arena[n:]
			if _, err := io.ReadFull(tr, it.data); err != nil {
				fail(fmt.Errorf("entry %s: read content: %w", quote(hdr.Name), readErr(err)))
				return
			}
		default:
			it.pipe, pw = io.Pipe()
		}
		b.items = append(b.items, it)
		if pw != nil || len(b.items) == batchLen {
			if !rd.send(b) {
				return
			}
			b = rd.newBatch()
		}
		if pw != nil {
			if _, err := io.Copy(pw, tr); err != nil {
				if !errors.Is(err, errStopped) {
					err = readErr(err)
					rd.err = fmt.Errorf("entry %s: read content: %w", quote(hdr.Name), err)
				}
				// The applier reports the error of the entry it reads.
				pw.CloseWithError(err)
				return
			}
			pw.Close()
		}
	}
	// The DiffID covers all of the stream, with the padding after the end
	// of the archive.
	if _, err := io.Copy(io.Discard, br); err != nil {
		fail(fmt.Errorf("read after end of archive: %w", readErr(err)))
		return
	}
	rd.diffID, rd.size = digest.NewDigest(digest.SHA256, c.h), c.n
	if len(b.items) > 0 {
		rd.send(b)
	}
}

// counter hashes and counts the uncompressed stream and stops it at the
// MaxBytes limit, or when done is closed.
type counter struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	max  int64
	done <-chan struct{}
	err  error // the first error, returned again by every later Read
}

func (c *counter) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	select {
	case <-c.done:
		c.err = errStopped
		return 0, c.err
	default:
	}
	if room := c.max - c.n + 1; int64(len(p)) > room {
		p = p[:room] // one byte past the limit proves it is exceeded
	}
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if c.n > c.max {
		c.err = exceeded("uncompressed layer", "MaxBytes", c.max)
		return n, c.err
	}
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}
