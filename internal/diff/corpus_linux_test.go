package diff

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

// The malicious-layer corpus. Every case runs in both whiteout modes against
// a root beside a sentinel directory "outside", which it must leave as it
// was, whatever the layer tries; the lower directory must stay as it was
// too. A case ends either in an ErrInvalidArgument error saying wantErr, or
// in a result that check inspects.

type corpusCase struct {
	name string
	// layer builds the layer; outside is the absolute path of the sentinel
	// directory, which a hostile layer may know.
	layer   func(t testing.TB, outside string) []byte
	lim     Limits
	wantErr string
	check   func(t *testing.T, root string, mode WhiteoutMode)
}

// corpusBase is what the parent snapshot holds: the lower directory with
// OverlayWhiteouts, the root's starting content with DeleteWhiteouts.
func corpusBase() []ent {
	return mine(dir("etc/"), file("etc/passwd", "root:x:0:0"), dir("data/"), file("data/f", "data"), dir("bin/"))
}

// tarOf builds an uncompressed layer of entries.
func tarOf(es ...ent) func(testing.TB, string) []byte {
	return func(t testing.TB, _ string) []byte { return mkTar(t, es) }
}

// tarAt builds an uncompressed layer of the entries es returns for outside.
func tarAt(es func(outside string) []ent) func(testing.TB, string) []byte {
	return func(t testing.TB, outside string) []byte { return mkTar(t, es(outside)) }
}

// rawHeader is a ustar header block, built by hand so that it can lie.
func rawHeader(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "14533207600\x00")
	b[156] = typ
	copy(b[257:265], "ustar\x0000")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// sparseBomb is a layer of one sparse file (GNU PAX format 1.0) of hole
// bytes followed by "hi\n": a few kilobytes that expand to hole+3 bytes.
func sparseBomb(hole int64) []byte {
	recs := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", "big") + paxRecord("GNU.sparse.realsize", strconv.FormatInt(hole+3, 10))
	data := append(pad([]byte(fmt.Sprintf("1\n%d\n3\n", hole))), "hi\n"...)
	b := append(rawHeader("PaxHeader", tar.TypeXHeader, int64(len(recs))), pad([]byte(recs))...)
	b = append(b, rawHeader("GNUSparseFile.0/big", tar.TypeReg, int64(len(data)))...)
	b = append(b, pad(data)...)
	return append(b, make([]byte, 1024)...)
}

func pad(b []byte) []byte { return append(b, make([]byte, (512-len(b)%512)%512)...) }

// paxRecord formats one PAX record, which carries its own length.
func paxRecord(k, v string) string {
	n := len(k) + len(v) + 3
	for n != len(strconv.Itoa(n))+len(k)+len(v)+3 {
		n = len(strconv.Itoa(n)) + len(k) + len(v) + 3
	}
	return fmt.Sprintf("%d %s=%s\n", n, k, v)
}

func exists(t *testing.T, root, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(root, p))
	if err != nil {
		t.Errorf("%s: %v", p, err)
		return nil
	}
	return fi
}

func hasType(t *testing.T, root, p string, want os.FileMode) {
	t.Helper()
	if fi := exists(t, root, p); fi != nil && fi.Mode().Type() != want {
		t.Errorf("%s: type %v, want %v", p, fi.Mode().Type(), want)
	}
}

// pwnedInside checks that the root holds a file named pwned: one the layer
// aimed at the sentinel's absolute path.
func pwnedInside(t *testing.T, root string) {
	t.Helper()
	found := false
	for p := range tree(t, root, treeOpts{}) {
		found = found || filepath.Base(p) == "pwned"
	}
	if !found {
		t.Errorf("no pwned file inside the root")
	}
}

func noXattr(t *testing.T, root, p string, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := unix.Lgetxattr(filepath.Join(root, p), n, nil); err != unix.ENODATA {
			t.Errorf("%s: xattr %s present (%v), want it dropped", p, n, err)
		}
	}
}

func corpus() []corpusCase {
	deep := strings.Repeat("a/", 10000) + "f"
	var chain []ent
	for i := range 30 {
		chain = append(chain, symlink(fmt.Sprintf("c%d", i), fmt.Sprintf("c%d", i+1)))
	}
	chain = append(chain, dir("c30/"), file("c0/end", "end of chain"))
	var incremental []ent
	for d := 1; d <= 2100; d++ {
		incremental = append(incremental, dir(strings.Repeat("d/", d)))
	}
	many := []ent{}
	for i := range 150 {
		many = append(many, file(fmt.Sprintf("f%d", i), ""))
	}
	long := strings.Repeat(strings.Repeat("n", 200)+"/", 5) + "file"
	tooLong := strings.Repeat(strings.Repeat("n", 200)+"/", 25) + "file"
	deepTarget := strings.Repeat("t/", 2000)

	return []corpusCase{
		{name: "dotdot name", layer: tarOf(file("../escape", "x")), wantErr: "climbs out"},
		{name: "dotdot twice", layer: tarOf(file("../../escape", "x")), wantErr: "climbs out"},
		{name: "dotdot in the middle", layer: tarOf(file("a/../../escape", "x")), wantErr: "climbs out"},
		{name: "dot then dotdot", layer: tarOf(file("./../escape", "x")), wantErr: "climbs out"},
		{name: "absolute dotdot", layer: tarOf(file("/../escape", "x")), wantErr: "climbs out"},
		{name: "absolute name is rooted", layer: tarOf(file("/etc/abs", "x")),
			check: func(t *testing.T, root string, _ WhiteoutMode) { hasType(t, root, "etc/abs", 0) }},
		{name: "absolute name of the sentinel is rooted",
			layer: tarAt(func(o string) []ent { return []ent{file(o+"/pwned", "x")} }),
			check: func(t *testing.T, root string, _ WhiteoutMode) { pwnedInside(t, root) }},
		{name: "symlink to outside then write through it",
			layer:   tarAt(func(o string) []ent { return []ent{symlink("a", o), file("a/pwned", "x")} }),
			wantErr: "target of a symlink does not exist"},
		{name: "symlink to an outside directory then files under it",
			layer:   tarAt(func(o string) []ent { return []ent{symlink("d", o+"/dir"), file("d/sub/pwned", "x")} }),
			wantErr: "target of a symlink does not exist"},
		{name: "symlink to outside resolves inside the root",
			layer: tarAt(func(o string) []ent {
				return []ent{dir(o + "/"), symlink("a", o), file("a/pwned", "x")}
			}),
			check: func(t *testing.T, root string, _ WhiteoutMode) { pwnedInside(t, root) }},
		{name: "relative symlink climbing out is clamped at the root",
			layer: tarOf(symlink("a", "../../../.."), file("a/etc/pwned", "x")),
			check: func(t *testing.T, root string, _ WhiteoutMode) { hasType(t, root, "etc/pwned", 0) }},
		{name: "relative symlink to the sentinel's relative path",
			layer: tarOf(symlink("a", "../outside"), file("a/pwned", "x")), wantErr: "target of a symlink does not exist"},
		{name: "symlink loop", layer: tarOf(symlink("l1", "l2"), symlink("l2", "l1"), file("l1/x", "x")), wantErr: "more than 40 symlinks"},
		{name: "symlink to itself", layer: tarOf(symlink("l", "l"), file("l/x", "x")), wantErr: "more than 40 symlinks"},
		{name: "chain of 30 symlinks", layer: tarOf(chain...),
			check: func(t *testing.T, root string, _ WhiteoutMode) { hasType(t, root, "c30/end", 0) }},
		{name: "hardlink to an absolute outside path",
			layer:   tarAt(func(o string) []ent { return []ent{hardlink("h", o+"/secret")} }),
			wantErr: "not found"},
		{name: "hardlink to dotdot", layer: tarOf(hardlink("h", "../outside/secret")), wantErr: "climbs out"},
		{name: "hardlink through a symlinked directory",
			layer:   tarAt(func(o string) []ent { return []ent{symlink("s", o), hardlink("h", "s/secret")} }),
			wantErr: "not found"},
		{name: "hardlink through a climbing symlink stays inside",
			layer: tarOf(symlink("s", "../../.."), hardlink("h", "s/etc/passwd")),
			check: func(t *testing.T, root string, _ WhiteoutMode) {
				a, b := exists(t, root, "h"), exists(t, root, "etc/passwd")
				if a != nil && b != nil && !os.SameFile(a, b) {
					t.Errorf("h is not a hardlink of etc/passwd")
				}
			}},
		{name: "hardlink to a directory", layer: tarOf(hardlink("h", "etc")), wantErr: "is a directory"},
		{name: "directory over a symlink to outside",
			layer: tarAt(func(o string) []ent {
				return []ent{symlink("a", o+"/dir"), with(dir("a/"), func(h *tar.Header) {
					h.Mode, h.Uid, h.Gid = 0o777, 1234, 1234
					xattrs("user.x", "y")(h)
				})}
			}),
			check: func(t *testing.T, root string, _ WhiteoutMode) {
				if fi := exists(t, root, "a"); fi != nil && (!fi.IsDir() || fi.Mode().Perm() != 0o777) {
					t.Errorf("a: %v, want a directory 0777", fi.Mode())
				}
			}},
		{name: "file over a symlink to outside",
			layer: tarAt(func(o string) []ent {
				return []ent{symlink("a", o+"/secret"), with(file("a", "pwned"), mode(0o4777))}
			}),
			check: func(t *testing.T, root string, _ WhiteoutMode) { hasType(t, root, "a", 0) }},
		{name: "device over a symlink to outside",
			layer: tarAt(func(o string) []ent {
				return []ent{symlink("a", o+"/secret"), devnode(tar.TypeChar, "a", 1, 3)}
			}),
			check: func(t *testing.T, root string, _ WhiteoutMode) {
				hasType(t, root, "a", os.ModeDevice|os.ModeCharDevice)
			}},
		{name: "setuid file through a symlink",
			layer: tarAt(func(o string) []ent {
				return []ent{symlink("bin2", o+"/dir"), with(file("bin2/su", "x"), mode(0o4755))}
			}),
			wantErr: "target of a symlink does not exist"},
		{name: "whiteout of dotdot", layer: tarOf(file("a/.wh...", "")), wantErr: `whiteout of ".."`},
		{name: "climbing whiteout", layer: tarOf(file("../.wh.outside", "")), wantErr: "climbs out"},
		{name: "whiteout through a symlink to outside",
			layer: tarAt(func(o string) []ent { return []ent{symlink("a", o), whiteoutOf("a/secret")} }),
			check: func(t *testing.T, root string, _ WhiteoutMode) { hasType(t, root, "a", os.ModeSymlink) }},
		{name: "whiteout through a climbing symlink",
			layer: tarOf(symlink("a", ".."), whiteoutOf("a/outside")),
			check: func(t *testing.T, root string, _ WhiteoutMode) { hasType(t, root, "a", os.ModeSymlink) }},
		{name: "whiteout of the parent's etc through a climbing symlink",
			layer: tarOf(symlink("a", "../.."), whiteoutOf("a/etc")),
			check: func(t *testing.T, root string, mode WhiteoutMode) {
				if mode == OverlayWhiteouts {
					hasType(t, root, "etc", os.ModeDevice|os.ModeCharDevice)
				} else if _, err := os.Lstat(filepath.Join(root, "etc")); err == nil {
					t.Errorf("etc not deleted")
				}
			}},
		{name: "opaque marker in a symlinked directory to outside",
			layer: tarAt(func(o string) []ent { return []ent{symlink("a", o+"/dir"), opaqueIn("a")} }),
			check: func(t *testing.T, root string, _ WhiteoutMode) { hasType(t, root, "a", os.ModeSymlink) }},
		{name: "opaque marker through a climbing symlink makes the root opaque",
			layer: tarOf(symlink("a", ".."), opaqueIn("a")),
			check: func(t *testing.T, root string, mode WhiteoutMode) {
				if mode == OverlayWhiteouts {
					hasType(t, root, "etc", os.ModeDevice|os.ModeCharDevice)
				} else if got := names(tree(t, root, treeOpts{})); !cmp.Equal(got, []string{".", "a"}) {
					t.Errorf("root holds %v, want only a", got)
				}
			}},
		{name: "trusted.overlay.opaque in PAX is dropped",
			layer: tarOf(with(dir("data/"), xattrs("trusted.overlay.opaque", "y", "user.kept", "1")), file("data/new", "x")),
			check: func(t *testing.T, root string, _ WhiteoutMode) {
				noXattr(t, root, "data", "trusted.overlay.opaque")
				hasType(t, root, "data/new", 0)
			}},
		{name: "trusted.overlay.redirect and other overlay xattrs in PAX are dropped",
			layer: tarOf(with(dir("r/"), xattrs("trusted.overlay.redirect", "/etc", "trusted.overlay.origin", "x",
				"trusted.overlay.metacopy", "", "user.overlay.opaque", "y", "trusted.overlay", "z"))),
			check: func(t *testing.T, root string, _ WhiteoutMode) {
				noXattr(t, root, "r", "trusted.overlay.redirect", "trusted.overlay.origin", "trusted.overlay.metacopy",
					"user.overlay.opaque", "trusted.overlay")
			}},
		{name: "device nodes are created inside the root",
			layer: tarOf(dir("dev/"), devnode(tar.TypeChar, "dev/null", 1, 3), devnode(tar.TypeBlock, "dev/sda", 8, 0),
				devnode(tar.TypeFifo, "dev/fifo", 0, 0)),
			check: func(t *testing.T, root string, _ WhiteoutMode) {
				var st unix.Stat_t
				if err := unix.Lstat(filepath.Join(root, "dev/null"), &st); err != nil || uint64(st.Rdev) != unix.Mkdev(1, 3) {
					t.Errorf("dev/null: %v, rdev %#x", err, st.Rdev)
				}
				hasType(t, root, "dev/sda", os.ModeDevice)
				hasType(t, root, "dev/fifo", os.ModeNamedPipe)
			}},
		{name: "dev is a symlink to outside then dev/null",
			layer: tarAt(func(o string) []ent {
				return []ent{symlink("dev", o), devnode(tar.TypeChar, "dev/null", 1, 3)}
			}),
			wantErr: "target of a symlink does not exist"},
		{name: "PAX path longer than PATH_MAX", layer: tarOf(file(strings.Repeat("p/", 2100)+"f", "x")), wantErr: "MaxPathLen"},
		{name: "GNU long name longer than PATH_MAX",
			layer:   tarOf(with(file(tooLong, "x"), func(h *tar.Header) { h.Format = tar.FormatGNU })),
			wantErr: "MaxPathLen"},
		{name: "GNU long name within the limits",
			layer: tarOf(with(file(long, "x"), func(h *tar.Header) { h.Format = tar.FormatGNU })),
			check: func(t *testing.T, root string, _ WhiteoutMode) { hasType(t, root, long, 0) }},
		{name: "path component longer than NAME_MAX", layer: tarOf(file(strings.Repeat("n", 256), "x")), wantErr: "MaxNameLen"},
		{name: "deep tree of 10000 levels", layer: tarOf(file(deep, "x")), wantErr: "MaxPathLen"},
		{name: "tree growing deeper than MaxPathLen", layer: tarOf(incremental...), wantErr: "MaxPathLen"},
		{name: "symlink resolving deeper than MaxPathLen",
			layer:   tarOf(file(deepTarget+"f", "x"), symlink("l", deepTarget), file("l/"+strings.Repeat("u/", 100)+"f", "x")),
			wantErr: "MaxPathLen"},
		{name: "more entries than MaxEntries", layer: tarOf(many...), lim: Limits{MaxEntries: 100}, wantErr: "MaxEntries"},
		{name: "decompression bomb declared in a header", layer: func(t testing.TB, _ string) []byte { return declaredBomb(t, 1<<30) },
			lim: Limits{MaxBytes: 16 << 20}, wantErr: "MaxBytes"},
		{name: "decompression bomb after the end of the archive",
			layer: func(t testing.TB, _ string) []byte { return bomb(t, mkTar(t, []ent{file("f", "x")}), 1<<30) },
			lim:   Limits{MaxBytes: 16 << 20}, wantErr: "MaxBytes"},
		{name: "sparse file bomb", layer: func(testing.TB, string) []byte { return sparseBomb(1 << 40) },
			lim: Limits{MaxBytes: 16 << 20}, wantErr: "MaxBytes"},
		{name: "sparse file within the limits", layer: func(testing.TB, string) []byte { return sparseBomb(1 << 20) },
			lim: Limits{MaxBytes: 16 << 20},
			check: func(t *testing.T, root string, _ WhiteoutMode) {
				if fi := exists(t, root, "big"); fi != nil && fi.Size() != 1<<20+3 {
					t.Errorf("big: %d bytes, want %d", fi.Size(), 1<<20+3)
				}
			}},
		{name: "duplicate entries where the last wins",
			layer: tarOf(file("x", "first"), dir("x/"), file("x/y", "inside"), file("x", "last"), dir("z/"), dir("z/")),
			check: func(t *testing.T, root string, _ WhiteoutMode) {
				if b, err := os.ReadFile(filepath.Join(root, "x")); err != nil || string(b) != "last" {
					t.Errorf("x: %q, %v; want \"last\"", b, err)
				}
			}},
		{name: "NUL in a PAX path",
			layer: func(testing.TB, string) []byte {
				rec := paxRecord("path", "a\x00/../../escape")
				b := append(rawHeader("PaxHeader", tar.TypeXHeader, int64(len(rec))), pad([]byte(rec))...)
				b = append(b, rawHeader("placeholder", tar.TypeReg, 0)...)
				return append(b, make([]byte, 1024)...)
			},
			wantErr: "invalid tar header"},
		{name: "newline in a name", layer: tarOf(file("a\nb", "x")),
			check: func(t *testing.T, root string, _ WhiteoutMode) { hasType(t, root, "a\nb", 0) }},
		{name: "truncated tar",
			layer: func(t testing.TB, _ string) []byte {
				return mkTar(t, []ent{file("f", strings.Repeat("x", 2000))})[:1200]
			},
			wantErr: "unexpected EOF"},
		{name: "garbage after the gzip stream",
			layer: func(t testing.TB, _ string) []byte {
				return append(gzipped(t, mkTar(t, []ent{file("f", "x")})), "garbage"...)
			},
			check: func(t *testing.T, root string, _ WhiteoutMode) { hasType(t, root, "f", 0) }},
		{name: "garbage after the zstd stream",
			layer: func(t testing.TB, _ string) []byte {
				return append(zstded(t, mkTar(t, []ent{file("f", "x")})), "garbage"...)
			},
			wantErr: "decompress zstd layer"},
		{name: "header size larger than the content",
			layer: func(testing.TB, string) []byte {
				return append(append(rawHeader("f", tar.TypeReg, 100000), pad([]byte("short"))...), make([]byte, 1024)...)
			},
			wantErr: "unexpected EOF"},
		{name: "header size smaller than the content",
			layer: func(testing.TB, string) []byte {
				b := append(rawHeader("f", tar.TypeReg, 10), pad(bytes.Repeat([]byte("A"), 2000))...)
				return append(b, make([]byte, 1024)...)
			},
			wantErr: "invalid tar header"},
		{name: "directory with the reserved whiteout prefix", layer: tarOf(file(".wh.x/y", "x")), wantErr: "reserved whiteout prefix"},
		{name: "root replaced by a file", layer: tarOf(file(".", "x")), wantErr: "replaces the root"},
		{name: "xattrs of a symlink are skipped",
			layer: tarOf(with(symlink("l", "/etc/passwd"), xattrs("user.x", "1", "security.capability", capNetRaw()))),
			check: func(t *testing.T, root string, _ WhiteoutMode) {
				hasType(t, root, "l", os.ModeSymlink)
				noXattr(t, root, "l", "user.x", "security.capability")
			}},
	}
}

// sentinel makes the directory outside beside the root and returns a
// snapshot function of everything in base but the root.
func sentinel(t testing.TB, base string) func(testing.TB) map[string]node {
	t.Helper()
	o := filepath.Join(base, "outside")
	for _, err := range []error{
		os.MkdirAll(filepath.Join(o, "dir"), 0o755),
		os.WriteFile(filepath.Join(o, "secret"), []byte("secret"), 0o600),
		os.WriteFile(filepath.Join(o, "dir", "file"), []byte("file"), 0o644),
		os.Symlink("secret", filepath.Join(o, "link")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return func(t testing.TB) map[string]node {
		return tree(t, base, treeOpts{dirMtimes: true, skip: func(p string) bool { return p == "root" }})
	}
}

// applyContained applies layer to base/root (with base/lower under
// OverlayWhiteouts) and fails t if anything outside the root changed.
func applyContained(t testing.TB, base string, snapshot func(testing.TB) map[string]node, layer []byte, mode WhiteoutMode, lim Limits) (ApplyResult, error) {
	t.Helper()
	root := filepath.Join(base, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := ApplyOptions{Whiteouts: mode, Limits: lim}
	if mode == OverlayWhiteouts {
		opts.Lowers = []string{filepath.Join(base, "lower")}
	} else if _, err := Apply(context.Background(), root, bytes.NewReader(mkTar(t, corpusBase())), opts); err != nil {
		t.Fatalf("apply the base layer: %v", err)
	}
	before := snapshot(t)
	res, err := Apply(context.Background(), root, bytes.NewReader(layer), opts)
	if diff := cmp.Diff(before, snapshot(t)); diff != "" {
		t.Errorf("%v mode: the layer changed what is outside the root (-before +after):\n%s", mode, diff)
	}
	return res, err
}

// corpusDirs makes base with the sentinel and the lower directory.
func corpusDirs(t testing.TB, base string) func(testing.TB) map[string]node {
	snapshot := sentinel(t, base)
	lower := filepath.Join(base, "lower")
	if err := os.Mkdir(lower, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(context.Background(), lower, bytes.NewReader(mkTar(t, corpusBase())), ApplyOptions{Whiteouts: OverlayWhiteouts}); err != nil {
		t.Fatalf("apply the base layer: %v", err)
	}
	return snapshot
}

func TestMaliciousLayers(t *testing.T) {
	testutil.RequirePrivileged(t)
	cases := corpus()
	if len(cases) < 30 {
		t.Fatalf("corpus has %d cases, want at least 30", len(cases))
	}
	for _, tc := range cases {
		for _, mode := range []WhiteoutMode{DeleteWhiteouts, OverlayWhiteouts} {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				base := t.TempDir()
				snapshot := corpusDirs(t, base)
				layer := tc.layer(t, filepath.Join(base, "outside"))
				_, err := applyContained(t, base, snapshot, layer, mode, tc.lim)
				if tc.wantErr != "" {
					if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("err = %v, want ErrInvalidArgument saying %q", err, tc.wantErr)
					}
					t.Logf("error: %s", quote(err.Error()))
					return
				}
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				tc.check(t, filepath.Join(base, "root"), mode)
			})
		}
	}
}

// FuzzApply applies arbitrary layers, seeded with the corpus, in both modes.
// Properties: no panic; nothing outside the root changes, the lower
// included; an uncompressed layer that applies has the DiffID of its bytes.
// It runs as any user; as root it also exercises ownership and devices.
func FuzzApply(f *testing.F) {
	base := f.TempDir()
	snapshot := corpusDirs(f, base)
	outside := filepath.Join(base, "outside")
	for _, tc := range corpus() {
		if strings.HasPrefix(tc.name, "decompression bomb") || tc.name == "tree growing deeper than MaxPathLen" {
			continue // too big for a seed: the fuzzer mutates every byte
		}
		layer := tc.layer(f, outside)
		f.Add(layer, false)
		f.Add(layer, true)
	}
	f.Fuzz(func(t *testing.T, layer []byte, overlay bool) {
		mode := DeleteWhiteouts
		if overlay {
			mode = OverlayWhiteouts
		}
		root := filepath.Join(base, "root")
		t.Cleanup(func() { removeAllWritable(t, root) })
		res, err := applyContained(t, base, snapshot, layer, mode, Limits{MaxBytes: 64 << 20, MaxEntries: 10000})
		if err == nil && DetectCompression(layer) == Uncompressed {
			if want := digest.FromBytes(layer); res.DiffID != want {
				t.Errorf("DiffID %s, want %s", res.DiffID, want)
			}
		}
	})
}

// removeAllWritable removes a tree that may hold directories without write
// permission.
func removeAllWritable(t testing.TB, p string) {
	filepath.WalkDir(p, func(q string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
}
