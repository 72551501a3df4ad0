package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/gzip"
)

// A layerFunc writes the entries of one layer.
type layerFunc func(*layerWriter)

// buildImage builds one gzip layer per function, in parallel, and an image
// of them for this host's platform. Layer i of image draws its content from
// a generator seeded with (seed, image, i).
func buildImage(image string, layers []layerFunc, seed uint64) (v1.Image, error) {
	built := make([]v1.Layer, len(layers))
	errs := make([]error, len(layers))
	var wg sync.WaitGroup
	for i, fn := range layers {
		wg.Go(func() { built[i], errs[i] = buildLayer(fn, fmt.Sprintf("%d/%s/%d", seed, image, i)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, built...)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config.Cmd = []string{"/bin/sh"}
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	return mutate.ConfigFile(img, cfg)
}

// buildLayer writes a layer's tar, gzip-compressed at the default level as
// docker and buildkit do, into memory.
func buildLayer(fn layerFunc, seed string) (v1.Layer, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	key := sha256.Sum256([]byte(seed))
	src := rand.NewChaCha8(key)
	w := &layerWriter{tw: tar.NewWriter(zw), src: src, rng: rand.New(src), dirs: map[string]bool{}}
	fn(w)
	if w.err != nil {
		return nil, w.err
	}
	if err := w.tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

// mtime is the modification time of every entry, for reproducible layers.
var mtime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// layerWriter writes tar entries, creating parent directories first. The
// first error sticks and stops further writes.
type layerWriter struct {
	tw   *tar.Writer
	src  *rand.ChaCha8 // random bytes
	rng  *rand.Rand    // sizes and choices, from src
	dirs map[string]bool
	buf  []byte
	err  error
}

func (w *layerWriter) header(h *tar.Header, body []byte) {
	if w.err != nil {
		return
	}
	if parent := path.Dir(strings.TrimSuffix(h.Name, "/")); parent != "." && !w.dirs[parent] {
		w.dir(parent, 0755)
	}
	h.ModTime, h.Size = mtime, int64(len(body))
	if err := w.tw.WriteHeader(h); err != nil {
		w.err = fmt.Errorf("%s: %w", h.Name, err)
		return
	}
	if _, err := w.tw.Write(body); err != nil {
		w.err = fmt.Errorf("%s: %w", h.Name, err)
	}
}

func (w *layerWriter) dir(name string, mode int64) {
	w.dirs[name] = true
	w.header(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: mode}, nil)
}

func (w *layerWriter) bytes(name string, mode int64, body []byte) {
	w.header(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}, body)
}

func (w *layerWriter) symlink(name, target string) {
	w.header(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0777}, nil)
}

// hardlink links name to target, a file written earlier in this layer.
func (w *layerWriter) hardlink(name, target string) {
	w.header(&tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, Mode: 0755}, nil)
}

// kind is what a generated file looks like to a compressor.
type kind int

const (
	random kind = iota // already compressed: archives, images (gzip saves nothing)
	binary             // executables and libraries (gzip saves about half)
	text               // source and docs (gzip saves about three quarters)
)

// file writes a regular file of size bytes of generated content.
func (w *layerWriter) file(name string, mode int64, size int, k kind) {
	if cap(w.buf) < size {
		w.buf = make([]byte, size)
	}
	b := w.buf[:size]
	switch k {
	case random:
		_, _ = w.src.Read(b)
	case binary:
		// 512-byte blocks: random (code), low-entropy (tables) or
		// repeated from the last 16 KiB (padding, relocations).
		for off := 0; off < size; off += 512 {
			blk := b[off:min(off+512, size)]
			switch n := w.rng.IntN(10); {
			case n < 3 || off == 0:
				_, _ = w.src.Read(blk)
			case n < 6:
				_, _ = w.src.Read(blk)
				for i := range blk {
					blk[i] &= 0x0f
				}
			default:
				copy(blk, b[off-512*(1+w.rng.IntN(min(off/512, 32))):])
			}
		}
	case text:
		b = b[:0]
		for len(b) < size {
			b = append(b, "        "[:4*w.rng.IntN(3)]...)
			for range 2 + w.rng.IntN(9) {
				b = append(b, words[w.rng.IntN(len(words))]...)
				b = append(b, ' ')
			}
			b[len(b)-1] = '\n'
		}
		b = b[:size]
	}
	w.bytes(name, mode, b)
}

// size returns a size between lo and hi, log-uniformly: small files are
// more common than large ones, as on real systems.
func (w *layerWriter) size(lo, hi int) int {
	return int(math.Exp(math.Log(float64(lo)) + w.rng.Float64()*(math.Log(float64(hi))-math.Log(float64(lo)))))
}

var words = strings.Fields(`the of and to in is for return if else def class import from self None
	True False value name data error result config path file request response context buffer
	index count length string int bool list dict map func var const type struct interface package
	test assert raise except try with as lambda yield async await print format append range len
	open read write close status http server client handler update delete create query table
	column row key token parse encode decode = == != ( ) { } [ ] : , . + - * / # // """ 0 1 2 42`)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// multilayer is a realistic image of about 300 MB uncompressed: a base
// system, libraries, a language runtime, dependencies, an application and a
// small configuration layer on top.
var multilayer = []layerFunc{
	func(w *layerWriter) { // base system, ~40 MB
		for _, l := range []string{"bin", "lib", "sbin"} {
			w.symlink(l, "usr/"+l)
		}
		w.dir("tmp", 01777)
		w.dir("root", 0700)
		for _, d := range []string{"dev", "proc", "sys", "home", "var/lib", "var/log", "usr/sbin"} {
			w.dir(d, 0755)
		}
		w.bytes("etc/passwd", 0644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
		w.bytes("etc/group", 0644, []byte("root:x:0:\nnogroup:x:65534:\n"))
		for i := range 150 {
			w.file(fmt.Sprintf("etc/conf.d/%03d.conf", i), 0644, w.size(200, 8*kib), text)
		}
		for i := range 300 {
			w.file(fmt.Sprintf("usr/bin/tool%03d", i), 0755, w.size(8*kib, 512*kib), binary)
		}
		for i := range 100 {
			w.symlink(fmt.Sprintf("usr/bin/alias%03d", i), fmt.Sprintf("tool%03d", i))
		}
		for i := range 5 {
			w.hardlink(fmt.Sprintf("usr/sbin/tool%03d", i), fmt.Sprintf("usr/bin/tool%03d", i))
		}
		for i := range 200 {
			w.file(fmt.Sprintf("usr/share/doc/pkg%03d/copyright", i), 0644, w.size(1*kib, 16*kib), text)
			w.file(fmt.Sprintf("usr/share/doc/pkg%03d/changelog", i), 0644, w.size(1*kib, 16*kib), text)
		}
	},
	func(w *layerWriter) { // shared libraries, ~80 MB
		const dir = "usr/lib/x86_64-linux-gnu/"
		for i := range 4 {
			w.file(fmt.Sprintf(dir+"libbig%d.so.1.0.0", i), 0644, w.size(8*mib, 16*mib), binary)
		}
		for i := range 400 {
			lib := fmt.Sprintf("lib%03d.so", i)
			w.file(dir+lib+".1.2.3", 0644, w.size(16*kib, 256*kib), binary)
			w.symlink(dir+lib+".1", lib+".1.2.3")
			w.symlink(dir+lib, lib+".1")
		}
	},
	func(w *layerWriter) { // a language runtime: source and bytecode, ~50 MB
		for p := range 60 {
			for m := range 40 {
				dir := fmt.Sprintf("usr/lib/python3/site-packages/pkg%02d/", p)
				w.file(fmt.Sprintf(dir+"mod%02d.py", m), 0644, w.size(1*kib, 64*kib), text)
				if m%2 == 0 {
					w.file(fmt.Sprintf(dir+"__pycache__/mod%02d.pyc", m), 0644, w.size(1*kib, 32*kib), binary)
				}
			}
		}
	},
	func(w *layerWriter) { // dependencies: bundled archives and a node_modules-like tree, ~75 MB
		for i := range 3 {
			w.file(fmt.Sprintf("opt/app/vendor/bundle%d.jar", i), 0644, w.size(10*mib, 20*mib), random)
		}
		for i := range 800 {
			k := []kind{text, text, text, binary, random}[w.rng.IntN(5)]
			w.file(fmt.Sprintf("opt/app/node_modules/m%02d/f%03d", i%40, i), 0644, w.size(2*kib, 128*kib), k)
		}
	},
	func(w *layerWriter) { // the application, ~50 MB
		w.file("opt/app/bin/app", 0755, 40*mib, binary)
		for i := range 200 {
			w.file(fmt.Sprintf("opt/app/templates/t%03d.html", i), 0644, w.size(1*kib, 32*kib), text)
		}
		for i := range 100 {
			w.file(fmt.Sprintf("opt/app/static/img%03d.png", i), 0644, w.size(4*kib, 256*kib), random)
		}
	},
	func(w *layerWriter) { // configuration: overwrites, a whiteout, symlinks
		w.file("etc/conf.d/000.conf", 0644, 512, text)
		w.bytes("etc/hostname", 0644, []byte("app\n"))
		w.bytes("usr/share/doc/pkg000/.wh.changelog", 0, nil)
		w.symlink("usr/local/bin/app", "/opt/app/bin/app")
		w.dir("var/lib/app", 0750)
	},
}

// smallfiles is one layer of 50 000 small files: 50 directories of 20
// directories of 50 files each, mostly text.
func smallfiles(w *layerWriter) {
	for d := range 50 {
		for s := range 20 {
			for f := range 50 {
				k := text
				if w.rng.IntN(10) < 3 {
					k = binary
				}
				w.file(fmt.Sprintf("srv/data/d%02d/s%02d/f%02d", d, s, f), 0644, w.size(100, 8*kib), k)
			}
		}
	}
}

// busyboxApplets get a symlink in /bin of the busybox image (the list of
// internal/testutil.BusyboxImage).
var busyboxApplets = []string{"sh", "echo", "cat", "ls", "sleep", "true", "false", "id", "env", "hostname", "ps", "mkdir", "rm", "touch", "wc", "head", "grep"}

// busyboxLayer is the layer of internal/testutil.BusyboxImage, which takes
// a testing.TB and so cannot be shared with a command.
func busyboxLayer() (layerFunc, error) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return nil, fmt.Errorf("needs Debian's busybox-static: %w", err)
	}
	return func(w *layerWriter) {
		for _, d := range []string{"bin", "etc", "root", "proc", "sys", "dev"} {
			w.dir(d, 0755)
		}
		w.dir("tmp", 01777)
		w.bytes("bin/busybox", 0755, bb)
		for _, a := range busyboxApplets {
			w.symlink("bin/"+a, "busybox")
		}
		w.bytes("etc/passwd", 0644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
		w.bytes("etc/group", 0644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	}, nil
}
