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

// maxBuffered is the largest file content the reader buffers; larger files
// are streamed to the applying goroutine through a pipe.
const maxBuffered = 256 << 10

// The reader hands entries over in batches of up to batchLen entries and
// batchBytes of content (a large file ends a batch): one handover per entry
// would cost a goroutine wakeup each. At most readAhead batches wait, so an
// Apply holds about 16 MiB of content.
const (
	batchLen   = 64
	batchBytes = 4 << 20
	readAhead  = 2
)

// reader decompresses, hashes and parses a layer in its own goroutine, ahead
// of the goroutine that applies the entries: the CPU work of reading overlaps
// the file system calls of applying. It never touches the file system.
type reader struct {
	items chan []item
	free  chan []byte   // buffers returned by the applier
	done  chan struct{} // closed by stop
	exit  chan struct{} // closed when the goroutine returns

	// Set before items is closed.
	diffID  digest.Digest
	size    int64
	entries int
	err     error
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
		items: make(chan []item, readAhead),
		free:  make(chan []byte, (readAhead+2)*batchBytes/maxBuffered),
		done:  make(chan struct{}),
		exit:  make(chan struct{}),
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
	for batch := range rd.items {
		for _, it := range batch {
			it.discard()
		}
	}
	<-rd.exit
}

// release gives a buffer back for reuse.
func (rd *reader) release(b []byte) {
	if cap(b) == maxBuffered {
		select {
		case rd.free <- b:
		default:
		}
	}
}

func (rd *reader) buffer(n int64) []byte {
	select {
	case b := <-rd.free:
		return b[:n]
	default:
		return make([]byte, n, maxBuffered)
	}
}

// send hands batch to the applier, unless stop was called.
func (rd *reader) send(batch []item) bool {
	if len(batch) == 0 {
		return true
	}
	select {
	case <-rd.done:
	default:
		select {
		case rd.items <- batch:
			return true
		case <-rd.done:
		}
	}
	for _, it := range batch {
		it.discard()
	}
	return false
}

func (rd *reader) run(r io.Reader, lim Limits) {
	defer close(rd.exit)
	defer close(rd.items)
	c := &counter{r: r, h: sha256.New(), max: lim.MaxBytes}
	// archive/tar reads headers 512 bytes at a time: the buffer saves a
	// read(2) from the decoder's pipe per header.
	br := bufio.NewReaderSize(c, 1<<20)
	tr := tar.NewReader(br)
	var batch []item
	size := 0
	fail := func(err error) {
		rd.err = err
		rd.send(append(batch, item{err: err}))
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
		it := item{e: e}
		var pw *io.PipeWriter
		switch {
		case e.kind != kindFile || e.size == 0:
		case e.size <= maxBuffered:
			it.data = rd.buffer(e.size)
			if _, err := io.ReadFull(tr, it.data); err != nil {
				fail(fmt.Errorf("entry %s: read content: %w", quote(hdr.Name), readErr(err)))
				return
			}
		default:
			it.pipe, pw = io.Pipe()
		}
		batch = append(batch, it)
		size += len(it.data)
		if pw != nil || len(batch) == batchLen || size >= batchBytes {
			if !rd.send(batch) {
				return
			}
			batch, size = nil, 0
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
	rd.send(batch)
}

// counter hashes and counts the uncompressed stream and stops it at the
// MaxBytes limit.
type counter struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	max int64
	err error // the first error, returned again by every later Read
}

func (c *counter) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
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
