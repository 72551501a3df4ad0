package diff

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Compression is the compression of a layer stream.
type Compression int

// The compressions Decompress understands. OCI layers are one of these;
// anything that is neither gzip nor zstd is read as an uncompressed tar.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

// zstdMaxWindow bounds the memory a zstd frame may ask the decoder for. It is
// the default limit of the zstd(1) decoder (--memory=128MB): every level of
// zstd(1) without --long=28 or more stays within it.
const zstdMaxWindow = 1 << 27

// DetectCompression tells the compression of a stream from its first bytes
// (four are enough).
func DetectCompression(head []byte) Compression {
	switch {
	case len(head) >= 3 && head[0] == 0x1f && head[1] == 0x8b && head[2] == 8:
		return Gzip
	case len(head) >= 4 && bytes.Equal(head[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	case len(head) >= 4 && head[0]&0xf0 == 0x50 && bytes.Equal(head[1:4], []byte{0x2a, 0x4d, 0x18}):
		// A zstd skippable frame (magic 0x184D2A5?), which may open a stream.
		return Zstd
	}
	return Uncompressed
}

// Decompress returns the decompressed stream of r, whose compression it
// detects, and that compression. Closing the stream releases the decoder; it
// does not close r.
//
// Gzip is decoded by Debian's igzip (package isal) run as a separate,
// unprivileged process when it is on PATH, and by klauspost/compress
// otherwise; igzip decodes twice as fast and in parallel with the reader (see
// BenchmarkGzipDecode). Both accept concatenated gzip members and, like
// gzip(1), ignore anything after the last member that does not start another
// one. Zstd is decoded by klauspost/compress with windows up to 128 MiB;
// data after the last frame is an error, as it is for zstd(1).
//
// A defect of the compressed data is an ErrInvalidArgument error; an error of
// r is returned wrapped, with its own kind.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	s, err := decompress(r, igzipPath())
	if err != nil {
		return nil, Uncompressed, err
	}
	return s, s.c, nil
}

// igzipPath is where igzip is installed, or "" when it is not.
var igzipPath = sync.OnceValue(func() string {
	p, err := exec.LookPath("igzip")
	if err != nil {
		return ""
	}
	return p
})

// decompress is Decompress with gzip decoded by the igzip binary at igzip,
// or in process when igzip is "".
func decompress(r io.Reader, igzip string) (*stream, error) {
	src := &source{r: r}
	br := bufio.NewReaderSize(src, 1<<20)
	head, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read layer: %w", err)
	}
	c := DetectCompression(head)
	s := &stream{c: c, src: src}
	switch c {
	case Gzip:
		if igzip != "" {
			// A decoder that cannot be started (say, setuid is not
			// allowed here) leaves br untouched for the in-process one.
			if p, err := startDecoder(igzip, br); err == nil {
				s.r, s.close = p, p.Close
				break
			}
		}
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, s.wrap(err)
		}
		z.Multistream(false)
		s.r, s.close = &gzipMembers{z: z, br: br}, z.Close
	case Zstd:
		d, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, fmt.Errorf("start zstd decoder: %w", err)
		}
		s.r, s.close = d, func() error { d.Close(); return nil }
	default:
		s.r = br
	}
	return s, nil
}

// source wraps the compressed reader and keeps its first error, so that a
// failure to read the layer is not mistaken for a defect of its data.
type source struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
	return n, err
}

func (s *source) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// stream is the decompressed stream Decompress returns.
type stream struct {
	c     Compression
	src   *source
	r     io.Reader
	close func() error
}

func (s *stream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = s.wrap(err)
	}
	return n, err
}

// wrap turns a decoder error into a read error of the source, when the source
// failed, or into an ErrInvalidArgument error of the layer's data.
func (s *stream) wrap(err error) error {
	if serr := s.src.failure(); serr != nil {
		return fmt.Errorf("read layer: %w", serr)
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("decompress %s layer: %w: %w", s.c, err, errdefs.ErrInvalidArgument)
}

func (s *stream) Close() error {
	if s.close == nil {
		return nil
	}
	return s.close()
}

// abort stops an external decoder at once, from any goroutine, so that a
// Read blocked on it returns. In-process decoders block only on the source.
func (s *stream) abort() {
	if p, ok := s.r.(*process); ok {
		_ = p.cmd.Process.Kill()
	}
}

// gzipMembers reads concatenated gzip members and stops, like gzip(1) and
// igzip, at the first byte after a member that does not start another one.
type gzipMembers struct {
	z  *gzip.Reader
	br *bufio.Reader
}

func (g *gzipMembers) Read(p []byte) (int, error) {
	for {
		n, err := g.z.Read(p)
		if err != io.EOF {
			return n, err
		}
		head, err := g.br.Peek(3)
		if err != nil && err != io.EOF {
			return n, err
		}
		if DetectCompression(head) != Gzip {
			return n, io.EOF
		}
		if err := g.z.Reset(g.br); err != nil {
			return n, err
		}
		g.z.Multistream(false)
		if n > 0 {
			return n, nil
		}
	}
}
