package diff

import (
	"archive/tar"
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/berth-dev/berth/internal/testutil"
)

// Benchmarks. Run as root (the layers have root-owned files and a floor that
// runs tar as root):
//
//	go test -run '^$' -bench . -benchtime 5x ./internal/diff
//
// BenchmarkApply compares Apply with its floor, GNU tar -xzf of the same
// layer into an empty directory, in the same run, for two layer shapes; the
// directories are made under TMPDIR (TMPDIR=/dev/shm measures CPU cost
// without the disk). BenchmarkGzipDecode compares the gzip decoders on a
// 64 MiB layer.

// benchData returns n bytes that compress like a typical layer (about 3:1
// with gzip -6): words from a small vocabulary with runs of random bytes.
func benchData(r *rand.Rand, n int) []byte {
	words := []string{"the", "lib", "usr", "share", "config", "return", "int", "func", "static", "const",
		"error", "value", "ELF", "data", "text", "section", "\n", "\t", "    ", "{", "}", "(", ")", ";", "0x00"}
	var b bytes.Buffer
	for b.Len() < n {
		if r.IntN(8) == 0 {
			raw := make([]byte, 16+r.IntN(112))
			for i := range raw {
				raw[i] = byte(r.Uint32())
			}
			b.Write(raw)
			continue
		}
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.Bytes()[:n]
}

// benchLayer is a gzip layer.
type benchLayer struct {
	gz   []byte
	size int64 // uncompressed
}

var (
	benchLayersOnce sync.Once
	benchLayers     map[string]benchLayer
)

// layersForBench builds, once per process, the layers of BenchmarkApply:
// "small" has 50 000 files of 0-4 KiB in 500 directories, "large" four files
// of 64 MiB.
func layersForBench(b *testing.B) map[string]benchLayer {
	benchLayersOnce.Do(func() {
		r := rand.New(rand.NewPCG(1, 2))
		var small, large []ent
		for d := range 500 {
			small = append(small, dir(fmt.Sprintf("usr/lib/pkg%03d/", d)))
			for f := range 100 {
				small = append(small, file(fmt.Sprintf("usr/lib/pkg%03d/file%03d.so", d, f), string(benchData(r, r.IntN(4096)))))
			}
		}
		large = append(large, dir("opt/"))
		for f := range 4 {
			large = append(large, file(fmt.Sprintf("opt/blob%d.bin", f), string(benchData(r, 64<<20))))
		}
		benchLayers = map[string]benchLayer{}
		for name, es := range map[string][]ent{"small": owned(0, 0, small...), "large": owned(0, 0, large...)} {
			raw := mkTar(b, es)
			var buf bytes.Buffer
			zw, _ := stdgzip.NewWriterLevel(&buf, stdgzip.DefaultCompression)
			zw.Write(raw)
			zw.Close()
			benchLayers[name] = benchLayer{gz: buf.Bytes(), size: int64(len(raw))}
		}
	})
	return benchLayers
}

func BenchmarkApply(b *testing.B) {
	testutil.RequirePrivileged(b)
	tarBin := testutil.RequireBinary(b, "tar")
	for _, shape := range []string{"small", "large"} {
		l := layersForBench(b)[shape]
		// Both read the layer from a file, as from a content store.
		blob := filepath.Join(b.TempDir(), shape+".tar.gz")
		if err := os.WriteFile(blob, l.gz, 0o644); err != nil {
			b.Fatal(err)
		}
		run := func(b *testing.B, extract func(dst string) error) {
			b.SetBytes(l.size)
			for b.Loop() {
				b.StopTimer()
				dst := filepath.Join(b.TempDir(), "root")
				if err := os.Mkdir(dst, 0o755); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := extract(dst); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(dst)
				b.StartTimer()
			}
		}
		applyFile := func(wrap func(io.Reader) (io.Reader, error)) func(string) error {
			return func(dst string) error {
				f, err := os.Open(blob)
				if err != nil {
					return err
				}
				defer f.Close()
				r, err := wrap(f)
				if err != nil {
					return err
				}
				_, err = Apply(context.Background(), dst, r, ApplyOptions{Whiteouts: OverlayWhiteouts})
				return err
			}
		}
		b.Run(shape+"/berth", func(b *testing.B) {
			run(b, applyFile(func(r io.Reader) (io.Reader, error) { return r, nil }))
		})
		// Apply of the stream decoded by klauspost/compress in the reading
		// goroutine: Apply as it is without igzip.
		b.Run(shape+"/berth-inprocess-gzip", func(b *testing.B) {
			run(b, applyFile(func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }))
		})
		b.Run(shape+"/tar-xzf", func(b *testing.B) {
			run(b, func(dst string) error {
				out, err := exec.Command(tarBin, "-xzf", blob, "-C", dst).CombinedOutput()
				if err != nil {
					return fmt.Errorf("tar: %v: %s", err, out)
				}
				return nil
			})
		})
	}
}

var (
	gzipBenchOnce sync.Once
	gzipBenchData []byte
)

// gzipBenchLayer is a gzip -6 layer of 64 MiB: the first 64 MiB of a tar of
// the host's /usr/lib, which is as realistic as layer content gets, or
// generated data where there is too little of it.
func gzipBenchLayer(b *testing.B) []byte {
	gzipBenchOnce.Do(func() {
		const size = 64 << 20
		var raw bytes.Buffer
		tw := tar.NewWriter(&raw)
		filepath.WalkDir("/usr/lib", func(p string, d os.DirEntry, err error) error {
			if err != nil || raw.Len() >= size || !d.Type().IsRegular() {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Size: int64(len(data)), Mode: 0o644})
			tw.Write(data)
			return nil
		})
		tw.Close()
		data := raw.Bytes()
		if len(data) < size {
			data = append(data, benchData(rand.New(rand.NewPCG(3, 4)), size-len(data))...)
		}
		var buf bytes.Buffer
		zw, _ := stdgzip.NewWriterLevel(&buf, stdgzip.DefaultCompression)
		zw.Write(data[:size])
		zw.Close()
		gzipBenchData = buf.Bytes()
	})
	return gzipBenchData
}

func BenchmarkGzipDecode(b *testing.B) {
	layer := gzipBenchLayer(b)
	decode := func(b *testing.B, open func(io.Reader) (io.ReadCloser, error)) {
		b.SetBytes(64 << 20)
		buf := make([]byte, 1<<20)
		for b.Loop() {
			r, err := open(bytes.NewReader(layer))
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil || n != 64<<20 {
				b.Fatalf("decoded %d bytes: %v", n, err)
			}
			r.Close()
		}
	}
	b.Run("compress-gzip", func(b *testing.B) {
		decode(b, func(r io.Reader) (io.ReadCloser, error) { return stdgzip.NewReader(r) })
	})
	b.Run("klauspost", func(b *testing.B) {
		decode(b, func(r io.Reader) (io.ReadCloser, error) { return decompress(r, "") })
	})
	for _, tool := range []string{"igzip", "pigz"} {
		b.Run(tool, func(b *testing.B) {
			p, err := exec.LookPath(tool)
			if err != nil {
				b.Skipf("%s is not installed", tool)
			}
			decode(b, func(r io.Reader) (io.ReadCloser, error) { return decompress(r, p) })
		})
	}
}
