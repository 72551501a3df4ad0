package diff

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestCleanPath(t *testing.T) {
	lim, _ := Limits{}.withDefaults()
	tests := []struct {
		in, want string
		invalid  bool
	}{
		{in: "a/b", want: "a/b"},
		{in: "./a/b/", want: "a/b"},
		{in: "/etc/passwd", want: "etc/passwd"},
		{in: "//a//b", want: "a/b"},
		{in: "a/./b/../c", want: "a/c"},
		{in: "a/..", want: ""},
		{in: "./", want: ""},
		{in: "/", want: ""},
		{in: "", want: ""},
		{in: "a\nb", want: "a\nb"},
		{in: "..", invalid: true},
		{in: "../x", invalid: true},
		{in: "../../x", invalid: true},
		{in: "./../x", invalid: true},
		{in: "a/../../x", invalid: true},
		{in: "/../x", invalid: true},
		{in: "a\x00b", invalid: true},
		{in: strings.Repeat("a", 256), invalid: true},
		{in: strings.Repeat("a/", 2048) + "a", invalid: true},
	}
	for _, tt := range tests {
		got, err := cleanPath(tt.in, lim)
		if tt.invalid {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("cleanPath(%s) = %s, %v; want ErrInvalidArgument", quote(tt.in), quote(got), err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("cleanPath(%s) = %s, %v; want %q", quote(tt.in), quote(got), err, tt.want)
		}
	}
}

func TestParseEntry(t *testing.T) {
	lim, _ := Limits{}.withDefaults()
	tests := []struct {
		name string
		hdr  tar.Header
		want *entry // nil with wantErr "" for a header that is skipped
		// wantErr is part of the error, which is then ErrInvalidArgument.
		wantErr string
	}{
		{name: "file", hdr: tar.Header{Typeflag: tar.TypeReg, Name: "a/b", Size: 3, Mode: 0o104755, Uid: 1000, Gid: 2000},
			want: &entry{kind: kindFile, raw: "a/b", name: "a/b", size: 3, meta: meta{mode: 0o4755, uid: 1000, gid: 2000}}},
		{name: "whiteout", hdr: tar.Header{Typeflag: tar.TypeReg, Name: "a/.wh.b"},
			want: &entry{kind: kindWhiteout, raw: "a/.wh.b", name: "a/b"}},
		{name: "whiteout at the root", hdr: tar.Header{Typeflag: tar.TypeReg, Name: "/.wh.b"},
			want: &entry{kind: kindWhiteout, raw: "/.wh.b", name: "b"}},
		{name: "opaque", hdr: tar.Header{Typeflag: tar.TypeReg, Name: "a/b/.wh..wh..opq"},
			want: &entry{kind: kindOpaque, raw: "a/b/.wh..wh..opq", name: "a/b"}},
		{name: "opaque root", hdr: tar.Header{Typeflag: tar.TypeReg, Name: ".wh..wh..opq"},
			want: &entry{kind: kindOpaque, raw: ".wh..wh..opq", name: ""}},
		{name: "whiteout of dotdot", hdr: tar.Header{Typeflag: tar.TypeReg, Name: "a/.wh..."}, wantErr: `whiteout of ".."`},
		{name: "whiteout of dot", hdr: tar.Header{Typeflag: tar.TypeReg, Name: "a/.wh.."}, wantErr: `whiteout of "."`},
		{name: "whiteout of nothing", hdr: tar.Header{Typeflag: tar.TypeReg, Name: ".wh."}, wantErr: `whiteout of ""`},
		{name: "under a whiteout", hdr: tar.Header{Typeflag: tar.TypeReg, Name: ".wh.a/b"}, wantErr: "reserved whiteout prefix"},
		{name: "climbing whiteout", hdr: tar.Header{Typeflag: tar.TypeReg, Name: "../.wh.x"}, wantErr: "climbs out"},
		{name: "root as a file", hdr: tar.Header{Typeflag: tar.TypeReg, Name: "./"}, wantErr: "replaces the root"},
		{name: "root directory", hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755},
			want: &entry{kind: kindDir, raw: "./", name: "", meta: meta{mode: 0o755}}},
		{name: "symlink kept verbatim", hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "../../../etc"},
			want: &entry{kind: kindSymlink, raw: "l", name: "l", link: "../../../etc"}},
		{name: "empty symlink", hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "l"}, wantErr: "symlink target"},
		{name: "long symlink", hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: strings.Repeat("x/", 2048)}, wantErr: "MaxPathLen"},
		{name: "hardlink cleaned", hdr: tar.Header{Typeflag: tar.TypeLink, Name: "h", Linkname: "/etc/passwd"},
			want: &entry{kind: kindHardlink, raw: "h", name: "h", link: "etc/passwd"}},
		{name: "hardlink climbing", hdr: tar.Header{Typeflag: tar.TypeLink, Name: "h", Linkname: "../x"}, wantErr: "hardlink target"},
		{name: "hardlink to root", hdr: tar.Header{Typeflag: tar.TypeLink, Name: "h", Linkname: "./"}, wantErr: "hardlink to the root"},
		{name: "device", hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Devmajor: 1, Devminor: 3, Mode: 0o666},
			want: &entry{kind: kindChar, raw: "dev/null", name: "dev/null", dev: 259, meta: meta{mode: 0o666}}},
		{name: "device out of range", hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "d", Devmajor: 1 << 20}, wantErr: "out of range"},
		{name: "owner out of range", hdr: tar.Header{Typeflag: tar.TypeReg, Name: "f", Uid: -1}, wantErr: "owner"},
		{name: "unsupported type", hdr: tar.Header{Typeflag: 'V', Name: "label"}, wantErr: "unsupported type"},
		{name: "global header", hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header"}},
		{name: "xattrs filtered and sorted", hdr: tar.Header{Typeflag: tar.TypeDir, Name: "d", PAXRecords: map[string]string{
			"SCHILY.xattr.user.b":                     "2",
			"SCHILY.xattr.user.a":                     "1",
			"SCHILY.xattr.security.capability":        "cap",
			"SCHILY.xattr.trusted.overlay.opaque":     "y",
			"SCHILY.xattr.trusted.overlay.redirect":   "/x",
			"SCHILY.xattr.trusted.overlay":            "z",
			"SCHILY.xattr.user.overlay.opaque":        "y",
			"LIBARCHIVE.xattr.user.ignored":           "x",
			"SCHILY.xattr.trusted.other-than-overlay": "kept",
		}}, want: &entry{kind: kindDir, raw: "d", name: "d", meta: meta{xattrs: []xattr{
			{"security.capability", []byte("cap")}, {"trusted.other-than-overlay", []byte("kept")},
			{"user.a", []byte("1")}, {"user.b", []byte("2")}}}}},
	}
	for _, tt := range tests {
		tt.hdr.ModTime = epoch
		got, err := parseEntry(&tt.hdr, lim)
		if tt.wantErr != "" {
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want ErrInvalidArgument saying %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if tt.want != nil && tt.want.kind != kindWhiteout && tt.want.kind != kindOpaque {
			tt.want.atime, tt.want.mtime = epoch, epoch
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(entry{}, meta{}, xattr{})); diff != "" {
			t.Errorf("%s: entry (-want +got):\n%s", tt.name, diff)
		}
	}
}

func apply(t *testing.T, root string, layer []byte, opts ApplyOptions) (ApplyResult, error) {
	t.Helper()
	if opts.Whiteouts == 0 {
		opts.Whiteouts = DeleteWhiteouts
	}
	return Apply(context.Background(), root, bytes.NewReader(layer), opts)
}

func TestApplyDiffIDIsTheSHA256OfTheUncompressedTar(t *testing.T) {
	raw := mkTar(t, mine(dir("a/"), file("a/f", "content"), symlink("a/l", "f"), hardlink("a/h", "a/f")))
	// GNU tar pads to a 10 KiB record: the padding is part of the DiffID.
	padded := append(bytes.Clone(raw), make([]byte, 10240-len(raw)%10240)...)
	for name, tt := range map[string]struct{ layer, tar []byte }{
		"plain":  {raw, raw},
		"padded": {padded, padded},
		"gzip":   {gzipped(t, raw), raw},
		"zstd":   {zstded(t, padded), padded},
	} {
		res, err := apply(t, t.TempDir(), tt.layer, ApplyOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := ApplyResult{DiffID: digest.FromBytes(tt.tar), Size: int64(len(tt.tar)), Entries: 4}
		if res != want {
			t.Errorf("%s: result %+v, want %+v", name, res, want)
		}
		if sum := sha256.Sum256(tt.tar); res.DiffID.Encoded() != string(digest.NewDigestFromBytes(digest.SHA256, sum[:]).Encoded()) {
			t.Errorf("%s: DiffID %s is not the sha256 of the tar", name, res.DiffID)
		}
	}
}

func TestApplyLimits(t *testing.T) {
	many := make([]ent, 0, 50)
	for i := range 50 {
		many = append(many, file(strings.Repeat("f", i+1), ""))
	}
	tests := []struct {
		name  string
		layer []ent
		lim   Limits
		field string
	}{
		{"entries", many, Limits{MaxEntries: 10}, "MaxEntries"},
		{"bytes", []ent{file("big", strings.Repeat("x", 1<<20))}, Limits{MaxBytes: 64 << 10}, "MaxBytes"},
		{"name length", []ent{file(strings.Repeat("n", 40), "")}, Limits{MaxNameLen: 32}, "MaxNameLen"},
		{"path length", []ent{file(strings.Repeat("d/", 40)+"f", "")}, Limits{MaxPathLen: 64}, "MaxPathLen"},
		{"symlink target length", []ent{symlink("l", strings.Repeat("x", 100))}, Limits{MaxPathLen: 64}, "MaxPathLen"},
	}
	for _, tt := range tests {
		layer := gzipped(t, mkTar(t, mine(tt.layer...)))
		_, err := apply(t, t.TempDir(), layer, ApplyOptions{Limits: tt.lim})
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "Limits."+tt.field) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument naming Limits.%s", tt.name, err, tt.field)
		}
		// Within the default limits the same layer applies.
		if _, err := apply(t, t.TempDir(), layer, ApplyOptions{}); err != nil {
			t.Errorf("%s: with default limits: %v", tt.name, err)
		}
	}
	if _, err := apply(t, t.TempDir(), mkTar(t, nil), ApplyOptions{Limits: Limits{MaxEntries: -1}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("negative limit: err = %v, want ErrInvalidArgument", err)
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// bomb returns a gzip layer of head followed by zeros zero bytes, made of
// concatenated gzip members of 16 MiB of zeros each, 16 KiB compressed.
func bomb(t testing.TB, head []byte, zeros int64) []byte {
	t.Helper()
	const chunk = 16 << 20
	member := gzipped(t, make([]byte, chunk))
	out := gzipped(t, head)
	for range zeros / chunk {
		out = append(out, member...)
	}
	return out
}

// declaredBomb is a bomb of one file whose header declares size bytes.
func declaredBomb(t testing.TB, size int64) []byte {
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bomb", Size: size, Mode: 0o644,
		Uid: os.Getuid(), Gid: os.Getgid(), ModTime: epoch}); err != nil {
		t.Fatal(err)
	}
	tw.Flush()
	return bomb(t, hdr.Bytes(), size)
}

// TestApplyStopsADecompressionBombEarly applies 32 GiB of zeros after a
// small archive, which only the count of the stream can stop.
func TestApplyStopsADecompressionBombEarly(t *testing.T) {
	const limit = 8 << 20
	layer := bomb(t, mkTar(t, mine(file("f", "x"))), 32<<30)
	for dname, igzip := range decoders(t) {
		src := &countingReader{r: bytes.NewReader(layer)}
		var r io.Reader = src
		if igzip == "" {
			// Decompress in the caller: Apply then reads a plain tar.
			rc, err := decompress(src, "")
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			r = rc
		}
		_, err := Apply(context.Background(), t.TempDir(), r, ApplyOptions{Whiteouts: DeleteWhiteouts, Limits: Limits{MaxBytes: limit}})
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "Limits.MaxBytes") {
			t.Fatalf("%s: err = %v, want ErrInvalidArgument naming Limits.MaxBytes", dname, err)
		}
		if src.n > int64(len(layer))/4 {
			t.Errorf("%s: read %d of the %d compressed bytes: Apply did not stop early", dname, src.n, len(layer))
		}
		t.Logf("%s: read %d of the %d compressed bytes", dname, src.n, len(layer))
	}
}

// TestApplyRejectsADeclaredBombBeforeWriting applies a file whose header
// declares 32 GiB: the limit is checked before any content is written.
func TestApplyRejectsADeclaredBombBeforeWriting(t *testing.T) {
	root := t.TempDir()
	_, err := apply(t, root, declaredBomb(t, 32<<30), ApplyOptions{Limits: Limits{MaxBytes: 8 << 20}})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "Limits.MaxBytes") {
		t.Fatalf("err = %v, want ErrInvalidArgument naming Limits.MaxBytes", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "bomb")); err == nil {
		t.Errorf("bomb was created")
	}
}

func TestApplyOptionsAreChecked(t *testing.T) {
	layer := mkTar(t, nil)
	for name, opts := range map[string]ApplyOptions{
		"no whiteout mode":             {},
		"unknown whiteout mode":        {Whiteouts: 7},
		"lowers with DeleteWhiteouts":  {Whiteouts: DeleteWhiteouts, Lowers: []string{t.TempDir()}},
		"negative limit":               {Whiteouts: DeleteWhiteouts, Limits: Limits{MaxBytes: -1}},
		"missing lower":                {Whiteouts: OverlayWhiteouts, Lowers: []string{filepath.Join(t.TempDir(), "none")}},
		"root that is not a directory": {Whiteouts: DeleteWhiteouts, Lowers: nil},
	} {
		root := t.TempDir()
		if name == "root that is not a directory" {
			root = filepath.Join(root, "file")
			os.WriteFile(root, nil, 0o644)
		}
		if _, err := Apply(context.Background(), root, bytes.NewReader(layer), opts); err == nil {
			t.Errorf("%s: Apply succeeded", name)
		}
	}
}

func TestApplyStopsWhenTheContextIsDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, t.TempDir(), bytes.NewReader(mkTar(t, mine(file("f", "x")))), ApplyOptions{Whiteouts: DeleteWhiteouts})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// stallingReader returns data, then blocks until ctx is done, as the body of
// an HTTP request made with ctx does when the server stalls.
type stallingReader struct {
	ctx  context.Context
	data []byte
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

func TestApplyStopsWhenTheContextIsDoneDuringAStalledRead(t *testing.T) {
	raw := mkTar(t, mine(file("a", strings.Repeat("a", 100000)), file("b", strings.Repeat("b", 500000))))
	gz := gzipped(t, raw)
	for name, layer := range map[string][]byte{"plain": raw[:len(raw)/2], "gzip": gz[:len(gz)/2]} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := Apply(ctx, t.TempDir(), &stallingReader{ctx: ctx, data: layer}, ApplyOptions{Whiteouts: DeleteWhiteouts})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err = %v, want context.Canceled", name, err)
		}
	}
}

func TestApplySetsDirectoryTimesAfterTheirContent(t *testing.T) {
	root := t.TempDir()
	old := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
	d := dir("d/")
	d.hdr.ModTime, d.hdr.Mode = old, 0o555
	// Cleanups run last first: this one before the removal of root.
	t.Cleanup(func() { os.Chmod(filepath.Join(root, "d"), 0o755) })
	if _, err := apply(t, root, mkTar(t, mine(d, file("d/f", "x"), dir("d/sub/"), file("d/sub/g", "y"))), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "d"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(old) || fi.Mode().Perm() != 0o555 {
		t.Errorf("d: mtime %v mode %v, want %v and 0555", fi.ModTime(), fi.Mode().Perm(), old)
	}
}

func TestApplyDeleteWhiteouts(t *testing.T) {
	root := t.TempDir()
	layers := [][]ent{
		mine(dir("a/"), file("a/keep", "1"), file("a/gone", "2"), dir("a/d/"), file("a/d/x", "3"),
			dir("o/"), file("o/old", "4"), dir("o/sub/"), file("o/sub/old", "5")),
		mine(whiteoutOf("a/gone"), whiteoutOf("a/d"), whiteoutOf("a/never-there"),
			// Entries before and after the opaque marker both stay.
			file("o/new1", "6"), opaqueIn("o"), file("o/new2", "7"), file("o/sub/new3", "8")),
	}
	for _, l := range layers {
		if _, err := apply(t, root, mkTar(t, l), ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got := names(tree(t, root, treeOpts{}))
	want := []string{".", "a", "a/keep", "o", "o/new1", "o/new2", "o/sub", "o/sub/new3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}
