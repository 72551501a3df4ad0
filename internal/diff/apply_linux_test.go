package diff

import (
	"archive/tar"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// capNetRaw is a security.capability value (VFS_CAP_REVISION_2, effective)
// granting CAP_NET_RAW.
func capNetRaw() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<unix.CAP_NET_RAW)
	return string(b)
}

// with returns e changed by f.
func with(e ent, f func(h *tar.Header)) ent {
	f(&e.hdr)
	return e
}

func mode(m int64) func(*tar.Header) { return func(h *tar.Header) { h.Mode = m } }

func owner(uid, gid int) func(*tar.Header) { return func(h *tar.Header) { h.Uid, h.Gid = uid, gid } }

func mtime(t time.Time) func(*tar.Header) { return func(h *tar.Header) { h.ModTime = t } }

func xattrs(kv ...string) func(*tar.Header) {
	return func(h *tar.Header) {
		h.PAXRecords = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			h.PAXRecords[paxXattr+kv[i]] = kv[i+1]
		}
	}
}

func devnode(typ byte, name string, major, minor int64) ent {
	return ent{hdr: tar.Header{Typeflag: typ, Name: name, Devmajor: major, Devminor: minor}}
}

// fidelityLayers are three layers exercising every kind of entry, then
// whiteouts of files and directories, opaque directories, type changes,
// hardlinks to files of a lower layer and implicit parents.
func fidelityLayers() [][]ent {
	user := owner(1000, 2000)
	l1 := []ent{
		dir("./"),
		dir("etc/"),
		file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
		with(file("etc/passwd-old", "old\n"), mode(0o600)),
		with(file("etc/shadow", "root:*:1::::::\n"), func(h *tar.Header) { h.Mode, h.Gid = 0o640, 42 }),
		symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
		dir("usr/"), dir("usr/bin/"),
		with(file("usr/bin/bash", "#!bash"), mode(0o755)),
		symlink("usr/bin/sh", "bash"),
		with(file("usr/bin/su", "setuid binary"), mode(0o4755)),
		hardlink("usr/bin/su-hardlink", "usr/bin/su"),
		with(file("usr/bin/wall", "setgid binary"), func(h *tar.Header) { h.Mode, h.Gid = 0o2755, 5 }),
		with(file("usr/bin/ping", "capable binary"), func(h *tar.Header) {
			h.Mode = 0o755
			xattrs("security.capability", capNetRaw())(h)
		}),
		dir("usr/lib/"),
		file("usr/lib/libc.so", "libc"),
		dir("usr/share/"), dir("usr/share/doc/"), dir("usr/share/doc/a/"),
		file("usr/share/doc/a/README", "read me"),
		file("usr/share/doc/b", "b"),
		symlink("lib", "usr/lib"),
		with(dir("tmp/"), mode(0o1777)),
		with(file("tmp/sticky", "sticky file"), mode(0o1777)),
		dir("home/"),
		with(dir("home/user/"), func(h *tar.Header) { h.Mode = 0o700; user(h); xattrs("user.dir", "1")(h) }),
		with(file("home/user/.profile", "export PS1"), func(h *tar.Header) {
			h.Mode = 0o600
			user(h)
			h.ModTime = time.Unix(1600000000, 123456789)
			xattrs("user.comment", "hello", "user.empty", "")(h)
		}),
		with(dir("home/user/cache/"), user),
		with(file("home/user/cache/x", "cached"), user),
		with(file("home/user/file2dir", "a file"), user),
		dir("data/"), dir("data/deep/"), dir("data/deep/er/"), dir("data/deep/er/est/"),
		file("data/deep/er/est/file", "deep"),
		dir("run/"),
		with(devnode(tar.TypeFifo, "run/fifo", 0, 0), mode(0o620)),
		dir("dev/"),
		with(devnode(tar.TypeChar, "dev/null", 1, 3), mode(0o666)),
		with(devnode(tar.TypeBlock, "dev/sda", 8, 0), func(h *tar.Header) { h.Mode, h.Gid = 0o660, 6 }),
	}
	l2 := []ent{
		whiteoutOf("etc/passwd-old"),
		whiteoutOf("data/deep"),
		opaqueIn("usr/share/doc"),
		file("usr/share/doc/c", "c"),
		with(file("etc/passwd", "root:x:0:0::/root:/bin/bash\n"), mtime(epoch.Add(time.Hour))),
		with(file("usr/bin/new", "new"), mode(0o755)),
		with(file("home/user/cache", "a file now"), user),
		with(dir("home/user/file2dir/"), user),
		with(file("home/user/file2dir/inner", "inner"), user),
		hardlink("usr/bin/su-link2", "usr/bin/su"),
		with(file("home/user/new/file", "implicit parent"), user),
		file("var/log/implicit.log", "implicit parents"),
	}
	l3 := []ent{
		whiteoutOf("usr/bin/new"),
		whiteoutOf("etc/shadow"),
		opaqueIn("home/user"),
		with(file("home/user/kept", "kept"), user),
		file("lib/x.so", "through a symlinked directory"),
		with(file("usr/bin/su", "new setuid binary"), mode(0o4755)),
		whiteoutOf("dev/sda"),
		symlink("run/fifo", "../tmp/fifo"),
	}
	return [][]ent{l1, l2, l3}
}

// extractWithGNUTar applies the layers with GNU tar into dst, deleting by
// hand before each layer what its whiteouts, opaque markers and type changes
// delete.
func extractWithGNUTar(t *testing.T, dst string, layers [][]ent) {
	t.Helper()
	tarBin := testutil.RequireBinary(t, "tar")
	for i, l := range layers {
		for _, e := range l {
			d, base := filepath.Split(strings.TrimPrefix(e.hdr.Name, "./"))
			switch {
			case base == opaqueMarker:
				children, _ := os.ReadDir(filepath.Join(dst, d))
				for _, c := range children {
					os.RemoveAll(filepath.Join(dst, d, c.Name()))
				}
			case strings.HasPrefix(base, whiteoutPrefix):
				os.RemoveAll(filepath.Join(dst, d, strings.TrimPrefix(base, whiteoutPrefix)))
			default:
				p := filepath.Join(dst, strings.TrimSuffix(e.hdr.Name, "/"))
				if fi, err := os.Lstat(p); err == nil && fi.IsDir() != (e.hdr.Typeflag == tar.TypeDir) {
					os.RemoveAll(p)
				}
			}
		}
		p := filepath.Join(t.TempDir(), "layer.tar")
		if err := os.WriteFile(p, mkTar(t, l), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(tarBin, "--xattrs", "--xattrs-include=*", "--numeric-owner", "--same-owner",
			"--exclude=.wh.*", "-xpf", p, "-C", dst)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar layer %d: %v: %s", i+1, err, out)
		}
	}
}

func applyLayers(t *testing.T, root string, layers [][]ent, opts ApplyOptions) {
	t.Helper()
	for i, l := range layers {
		if _, err := apply(t, root, gzipped(t, mkTar(t, l)), opts); err != nil {
			t.Fatalf("apply layer %d: %v", i+1, err)
		}
	}
}

func TestApplyMatchesGNUTar(t *testing.T) {
	testutil.RequirePrivileged(t)
	layers := fidelityLayers()
	native := t.TempDir()
	applyLayers(t, native, layers, ApplyOptions{Whiteouts: DeleteWhiteouts})
	want := t.TempDir()
	extractWithGNUTar(t, want, layers)

	got := tree(t, native, treeOpts{})
	if diff := cmp.Diff(tree(t, want, treeOpts{}), got); diff != "" {
		t.Errorf("Apply differs from GNU tar (-tar +apply):\n%s", diff)
	}
	// Spot checks of what the comparison relies on.
	for p, n := range map[string]node{
		"usr/bin/su":   {Mode: 0o4755},
		"usr/bin/wall": {Mode: 0o2755, GID: 5},
		"tmp":          {Mode: 0o1777},
		"var/log":      {Mode: 0o755},
	} {
		if got[p].Mode != n.Mode || got[p].GID != n.GID {
			t.Errorf("%s: mode %v gid %d, want %v and %d", p, got[p].Mode, got[p].GID, n.Mode, n.GID)
		}
	}
	if got["usr/bin/ping"].Xattrs["security.capability"] != capNetRaw() {
		t.Errorf("usr/bin/ping lost its capability: %q", got["usr/bin/ping"].Xattrs)
	}
	if got["usr/bin/su-hardlink"].SHA256 == got["usr/bin/su"].SHA256 {
		t.Errorf("replacing usr/bin/su changed its old hardlinks")
	}
}

// overlayView mounts the layers, nearest first, read-only at a new directory.
func overlayView(t *testing.T, layers ...string) string {
	t.Helper()
	m := t.TempDir()
	if err := unix.Mount("overlay", m, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(layers, ":")); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(m, 0); err != nil {
			t.Errorf("unmount %s: %v", m, err)
		}
	})
	return m
}

// viewable keeps what an overlayfs view is compared on: user xattrs and
// file capabilities (overlayfs has its own trusted.overlay.* and adds
// security labels), no link counts (without index=on overlayfs does not keep
// hardlinks across a copy up) and no root (an upper directory's root is the
// snapshotter's).
func viewable(t *testing.T, root string) map[string]node {
	tr := tree(t, root, treeOpts{xattr: func(name string) bool {
		return strings.HasPrefix(name, "user.") || name == "security.capability"
	}})
	delete(tr, ".")
	for p, n := range tr {
		n.Nlink = 0
		tr[p] = n
	}
	return tr
}

func TestOverlayApplyMatchesNative(t *testing.T) {
	testutil.RequirePrivileged(t)
	layers := fidelityLayers()
	native := t.TempDir()
	applyLayers(t, native, layers, ApplyOptions{Whiteouts: DeleteWhiteouts})

	var uppers []string // nearest first
	for i, l := range layers {
		upper := t.TempDir()
		if _, err := apply(t, upper, gzipped(t, mkTar(t, l)), ApplyOptions{Whiteouts: OverlayWhiteouts, Lowers: uppers}); err != nil {
			t.Fatalf("apply layer %d: %v", i+1, err)
		}
		uppers = append([]string{upper}, uppers...)
	}
	view := overlayView(t, uppers...)
	if diff := cmp.Diff(viewable(t, native), viewable(t, view)); diff != "" {
		t.Errorf("overlay view differs from native (-native +overlay):\n%s", diff)
	}

	// What the upper directories hold: whiteouts only where a lower holds
	// the name, copied-up parents with their metadata.
	u2, u3 := uppers[1], uppers[0]
	u2tree := tree(t, u2, treeOpts{})
	for p, typ := range map[string]string{"etc/passwd-old": "char", "data/deep": "char", "home/user": "dir", "usr/bin/su": "file"} {
		if u2tree[p].Type != typ {
			t.Errorf("layer 2 upper: %s is %q, want %q", p, u2tree[p].Type, typ)
		}
	}
	if n := u2tree["home/user"]; n.Mode != 0o700 || n.UID != 1000 || n.GID != 2000 || n.Xattrs["user.dir"] != "1" {
		t.Errorf("layer 2 upper: home/user copied up as %+v", n)
	}
	if got := u2tree["usr/share/doc"].Xattrs[opaqueXattr]; got != "y" {
		t.Errorf("layer 2 upper: usr/share/doc opaque xattr %q, want \"y\"", got)
	}
	u3tree := tree(t, u3, treeOpts{})
	if _, ok := u3tree["usr/lib/x.so"]; !ok {
		t.Errorf("layer 3 upper: lib/x.so not written through the symlink lib -> usr/lib: %v", names(u3tree))
	}
	if got := u3tree["usr/bin/new"]; got.Type != "char" {
		t.Errorf("layer 3 upper: usr/bin/new is %q, want a whiteout", got.Type)
	}
}

// TestOverlayEdgeCasesMatchNative applies layers whose meaning depends on
// the order of their entries or on what the lowers hold, in both modes, and
// compares the overlay view with the native tree.
func TestOverlayEdgeCasesMatchNative(t *testing.T) {
	testutil.RequirePrivileged(t)
	base := []ent{dir("d/"), file("d/old", "1"), dir("d/sub/"), file("d/sub/old", "2"), dir("o/"), file("o/old", "3"),
		dir("o/keep/"), file("o/keep/old", "4"), symlink("s", "d"), file("f", "5"), dir("w/"), file("w/x", "6")}
	tests := []struct {
		name  string
		layer []ent
	}{
		{"a directory replacing a file of the same layer starts empty",
			[]ent{file("d", "now a file"), dir("d/"), file("d/new", "7")}},
		{"a whiteout then the same name in the same layer",
			[]ent{whiteoutOf("d"), file("d/new", "8")}},
		{"entries then a whiteout of them",
			[]ent{file("new", "9"), whiteoutOf("new"), file("d/n", "10"), whiteoutOf("d")}},
		{"opaque marker after entries under it",
			[]ent{file("o/new", "11"), file("o/keep/new", "12"), opaqueIn("o")}},
		{"opaque marker before entries under it",
			[]ent{opaqueIn("o"), file("o/new", "13"), file("o/keep/new", "14")}},
		{"entries through a symlink of a lower",
			[]ent{file("s/through", "15"), file("s/sub/deeper", "16")}},
		{"whiteout through a symlink of a lower",
			[]ent{whiteoutOf("s/old")}},
		{"hardlinks to files of a lower",
			[]ent{hardlink("h1", "f"), hardlink("h2", "f"), hardlink("h3", "d/sub/old")}},
		{"whiteout of something no layer holds",
			[]ent{whiteoutOf("nothing"), whiteoutOf("d/nothing"), whiteoutOf("nowhere/x")}},
		{"opaque root",
			[]ent{file("new-root-file", "17"), opaqueIn(".")}},
		{"duplicates where the last wins",
			[]ent{file("x", "a"), dir("x/"), file("x/y", "b"), file("x", "c"), dir("w/"), file("w", "d")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			native := t.TempDir()
			applyLayers(t, native, [][]ent{base, tt.layer}, ApplyOptions{Whiteouts: DeleteWhiteouts})
			lower, upper := t.TempDir(), t.TempDir()
			applyLayers(t, lower, [][]ent{base}, ApplyOptions{Whiteouts: OverlayWhiteouts})
			applyLayers(t, upper, [][]ent{tt.layer}, ApplyOptions{Whiteouts: OverlayWhiteouts, Lowers: []string{lower}})
			want := viewable(t, native)
			if diff := cmp.Diff(want, viewable(t, overlayView(t, upper, lower))); diff != "" {
				t.Errorf("overlay view differs from native (-native +overlay):\n%s", diff)
			}
		})
	}
}
