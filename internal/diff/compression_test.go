package diff

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestDetectCompression(t *testing.T) {
	tests := []struct {
		name string
		head []byte
		want Compression
	}{
		{"gzip", []byte{0x1f, 0x8b, 0x08, 0x00}, Gzip},
		{"gzip three bytes", []byte{0x1f, 0x8b, 0x08}, Gzip},
		{"gzip magic with another method", []byte{0x1f, 0x8b, 0x07, 0x00}, Uncompressed},
		{"zstd frame", []byte{0x28, 0xb5, 0x2f, 0xfd}, Zstd},
		{"zstd skippable frame", []byte{0x5a, 0x2a, 0x4d, 0x18}, Zstd},
		{"tar", []byte("etc/passwd\x00\x00"), Uncompressed},
		{"empty", nil, Uncompressed},
		{"short", []byte{0x1f}, Uncompressed},
		{"bzip2 is not a layer compression", []byte("BZh9"), Uncompressed},
	}
	for _, tt := range tests {
		if got := DetectCompression(tt.head); got != tt.want {
			t.Errorf("%s: DetectCompression(% x) = %v, want %v", tt.name, tt.head, got, tt.want)
		}
	}
}

// decoders are the gzip decoders Decompress may use: in process, and igzip
// when it is installed.
func decoders(t *testing.T) map[string]string {
	ds := map[string]string{"in-process": ""}
	if p, err := exec.LookPath("igzip"); err == nil {
		ds["igzip"] = p
	} else {
		t.Log("igzip is not installed: only the in-process gzip decoder is tested")
	}
	return ds
}

func readAll(t *testing.T, b []byte, igzip string) ([]byte, Compression, error) {
	t.Helper()
	rc, err := decompress(bytes.NewReader(b), igzip)
	if err != nil {
		return nil, Uncompressed, err
	}
	out, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return out, rc.c, err
}

func TestDecompressRoundTrips(t *testing.T) {
	data := bytes.Repeat([]byte("berth layer data "), 100000)
	for dname, igzip := range decoders(t) {
		for _, tt := range []struct {
			name string
			in   []byte
			want Compression
		}{
			{"plain", data, Uncompressed},
			{"gzip", gzipped(t, data), Gzip},
			{"zstd", zstded(t, data), Zstd},
			{"gzip members", append(gzipped(t, data[:1000]), gzipped(t, data[1000:])...), Gzip},
			{"empty", nil, Uncompressed},
		} {
			got, c, err := readAll(t, tt.in, igzip)
			if err != nil {
				t.Errorf("%s %s: %v", dname, tt.name, err)
				continue
			}
			if c != tt.want {
				t.Errorf("%s %s: compression %v, want %v", dname, tt.name, c, tt.want)
			}
			if want := data; tt.in == nil {
				if len(got) != 0 {
					t.Errorf("%s %s: got %d bytes, want none", dname, tt.name, len(got))
				}
			} else if !bytes.Equal(got, want) {
				t.Errorf("%s %s: got %d bytes, want %d", dname, tt.name, len(got), len(want))
			}
		}
	}
}

func TestDecompressCorruptDataIsInvalidArgument(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	gz := gzipped(t, data)
	badCRC := bytes.Clone(gz)
	badCRC[len(badCRC)-6] ^= 0xff
	badBody := bytes.Clone(gz)
	for i := 20; i < 60; i++ {
		badBody[i] ^= 0x55
	}
	zs := zstded(t, data)
	badZstd := bytes.Clone(zs)
	for i := 8; i < len(badZstd)-4; i += 7 {
		badZstd[i] ^= 0x55
	}
	cases := []struct {
		name, in string
		kind     Compression
	}{
		{"gzip checksum", string(badCRC), Gzip},
		{"gzip body", string(badBody), Gzip},
		{"gzip truncated", string(gz[:len(gz)/2]), Gzip},
		{"gzip header only", string(gz[:5]), Gzip},
		{"zstd corrupt", string(badZstd), Zstd},
		{"zstd truncated", string(zs[:len(zs)/2]), Zstd},
		{"zstd with data after the frame", string(zs) + "garbage after", Zstd},
	}
	for dname, igzip := range decoders(t) {
		for _, tt := range cases {
			_, _, err := readAll(t, []byte(tt.in), igzip)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%s %s: err = %v, want ErrInvalidArgument", dname, tt.name, err)
				continue
			}
			if want := fmt.Sprintf("decompress %s layer", tt.kind); !strings.Contains(err.Error(), want) {
				t.Errorf("%s %s: err = %q, want it to say %q", dname, tt.name, err, want)
			}
		}
	}
}

func TestDecompressIgnoresDataAfterGzip(t *testing.T) {
	data := []byte("the layer")
	for dname, igzip := range decoders(t) {
		for _, trailer := range []string{"garbage", "\x00\x00\x00\x00\x00\x00\x00\x00"} {
			got, _, err := readAll(t, append(gzipped(t, data), trailer...), igzip)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s, trailer %q: got %q, %v; want %q", dname, trailer, got, err, data)
			}
		}
	}
}

// failingReader returns data and then err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestDecompressKeepsTheSourceErrorKind(t *testing.T) {
	data := bytes.Repeat([]byte("abc"), 100000)
	srcErr := fmt.Errorf("fetch blob: %w", errdefs.ErrUnavailable)
	for dname, igzip := range decoders(t) {
		for name, in := range map[string][]byte{"plain": data, "gzip": gzipped(t, data), "zstd": zstded(t, data)} {
			rc, err := decompress(&failingReader{data: in[:len(in)/2], err: srcErr}, igzip)
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			if !errors.Is(err, errdefs.ErrUnavailable) || errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%s %s: err = %v, want the source's ErrUnavailable only", dname, name, err)
			}
		}
	}
}

func FuzzDetectCompression(f *testing.F) {
	f.Add([]byte{0x1f, 0x8b, 0x08})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Add([]byte("plain"))
	f.Fuzz(func(t *testing.T, head []byte) {
		c := DetectCompression(head)
		switch c {
		case Gzip:
			if !bytes.HasPrefix(head, []byte{0x1f, 0x8b, 0x08}) {
				t.Fatalf("% x detected as gzip", head)
			}
		case Zstd:
			if len(head) < 4 || head[3] != 0xfd && head[3] != 0x18 {
				t.Fatalf("% x detected as zstd", head)
			}
		case Uncompressed:
		default:
			t.Fatalf("unknown compression %v", c)
		}
		// Detection looks at the first four bytes only.
		if len(head) > 4 && DetectCompression(head[:4]) != c {
			t.Fatalf("% x: detection depends on more than four bytes", head)
		}
	})
}

func FuzzDecompress(f *testing.F) {
	data := []byte("some layer content, some layer content, some layer content")
	f.Add(gzipped(f, data))
	f.Add(zstded(f, data))
	f.Add(append(gzipped(f, data), "trailing"...))
	f.Add(data)
	f.Fuzz(func(t *testing.T, in []byte) {
		// In process only: the fuzzer runs this too often to start a
		// process each time.
		rc, err := decompress(bytes.NewReader(in), "")
		if err == nil {
			_, err = io.Copy(io.Discard, io.LimitReader(rc, 64<<20))
			rc.Close()
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("error of another kind than ErrInvalidArgument: %v", err)
		}
	})
}
