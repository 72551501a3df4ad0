package diff

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

// diffBase is the parent snapshot the diff tests change.
func diffBase() []ent {
	return []ent{
		dir("d/"), file("d/keep", "keep"), dir("d/sub/"), file("d/sub/f", "f"),
		file("mod", "original"), file("del", "delete me"),
		dir("gone/"), dir("gone/deep/"), file("gone/deep/f", "f"),
		dir("todir-file/"), file("todir-file/x", "x"),
		file("tofile-dir", "a file"),
		dir("opq/"), file("opq/old", "old"), dir("opq/olddir/"), file("opq/olddir/f", "f"),
		file("perm", "perm"), file("owner", "owner"),
		with(file("xattr-file", "x"), xattrs("user.old", "1")),
		symlink("link", "d/keep"),
		file("hard", "h"), hardlink("hard2", "hard"),
	}
}

// change makes the same changes to a tree, through an overlayfs mount or
// directly: additions, modifications, deletions of files and directories,
// type changes, a directory deleted and made again (opaque), metadata
// changes, links, xattrs and a fifo.
func change(t *testing.T, root string) {
	t.Helper()
	p := func(name string) string { return filepath.Join(root, name) }
	for _, err := range []error{
		os.WriteFile(p("new-file"), []byte("new"), 0o640),
		os.WriteFile(p("mod"), []byte("modified content"), 0o644),
		os.Remove(p("del")),
		os.RemoveAll(p("gone")),
		os.RemoveAll(p("todir-file")),
		os.WriteFile(p("todir-file"), []byte("a file now"), 0o644),
		os.Remove(p("tofile-dir")),
		os.Mkdir(p("tofile-dir"), 0o750),
		os.WriteFile(p("tofile-dir/x"), []byte("x"), 0o644),
		os.RemoveAll(p("opq")),
		os.Mkdir(p("opq"), 0o755),
		os.WriteFile(p("opq/new"), []byte("new"), 0o644),
		os.Chmod(p("perm"), 0o4750),
		os.Lchown(p("owner"), 1234, 5678),
		os.Symlink("../target", p("newlink")),
		os.Link(p("new-file"), p("new-file-link")),
		unix.Setxattr(p("xattr-file"), "user.new", []byte("v"), 0),
		unix.Mkfifo(p("fifo"), 0o600),
		os.Mkdir(p("d/newdir"), 0o700),
		os.WriteFile(p("d/newdir/f"), []byte("f"), 0o600),
	} {
		if err != nil {
			t.Fatalf("change %s: %v", root, err)
		}
	}
}

// seconds cuts the mtimes of a tree to whole seconds, as layers do.
func seconds(tr map[string]node) map[string]node {
	for p, n := range tr {
		n.Mtime = n.Mtime / int64(time.Second) * int64(time.Second)
		tr[p] = n
	}
	return tr
}

func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if out, err := exec.Command("cp", "-a", src+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s: %v: %s", src, err, out)
	}
	return dst
}

func TestWriteDiffFromUpperRoundTrips(t *testing.T) {
	testutil.RequirePrivileged(t)
	lower := t.TempDir()
	applyLayers(t, lower, [][]ent{diffBase()}, ApplyOptions{Whiteouts: DeleteWhiteouts})

	upper, work, merged := t.TempDir(), t.TempDir(), t.TempDir()
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work + ",index=off,metacopy=off,redirect_dir=off"
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	change(t, merged)
	want := seconds(viewable(t, merged))
	if err := unix.Unmount(merged, 0); err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	if err := WriteDiffFromUpper(context.Background(), &layer, upper); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(layer.String(), opaqueMarker) {
		t.Errorf("the diff has no opaque marker for opq")
	}

	native := copyTree(t, lower)
	if _, err := apply(t, native, layer.Bytes(), ApplyOptions{Whiteouts: DeleteWhiteouts}); err != nil {
		t.Fatalf("apply the diff natively: %v", err)
	}
	if diff := cmp.Diff(want, seconds(viewable(t, native))); diff != "" {
		t.Errorf("lower + diff (native) differs from the changed view (-changed +applied):\n%s", diff)
	}

	upper2 := t.TempDir()
	if _, err := apply(t, upper2, layer.Bytes(), ApplyOptions{Whiteouts: OverlayWhiteouts, Lowers: []string{lower}}); err != nil {
		t.Fatalf("apply the diff as an upper directory: %v", err)
	}
	if diff := cmp.Diff(want, seconds(viewable(t, overlayView(t, upper2, lower)))); diff != "" {
		t.Errorf("lower + diff (overlay) differs from the changed view (-changed +applied):\n%s", diff)
	}
}

func TestWriteDiffRoundTrips(t *testing.T) {
	testutil.RequirePrivileged(t)
	lower := t.TempDir()
	applyLayers(t, lower, [][]ent{diffBase()}, ApplyOptions{Whiteouts: DeleteWhiteouts})
	upper := copyTree(t, lower)
	change(t, upper)

	var layer bytes.Buffer
	if err := WriteDiff(context.Background(), &layer, lower, upper); err != nil {
		t.Fatal(err)
	}
	// Unchanged files are not in the diff.
	in := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(layer.Bytes()))
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		in[hdr.Name] = true
	}
	for _, unchanged := range []string{"d/keep", "link", "hard", "hard2", "d/sub/"} {
		if in[unchanged] {
			t.Errorf("the diff holds the unchanged %s", unchanged)
		}
	}
	for _, changed := range []string{"mod", ".wh.del", ".wh.gone", "opq/.wh.old", "opq/.wh.olddir", "opq/new", "todir-file", "tofile-dir/"} {
		if !in[changed] {
			t.Errorf("the diff misses %s: %v", changed, in)
		}
	}
	got := copyTree(t, lower)
	if _, err := apply(t, got, layer.Bytes(), ApplyOptions{Whiteouts: DeleteWhiteouts}); err != nil {
		t.Fatalf("apply the diff: %v", err)
	}
	if diff := cmp.Diff(seconds(tree(t, upper, treeOpts{})), seconds(tree(t, got, treeOpts{}))); diff != "" {
		t.Errorf("lower + diff differs from upper (-upper +applied):\n%s", diff)
	}
}

func TestWriteDiffNoticesContentChangesWithTheSameMtime(t *testing.T) {
	testutil.RequirePrivileged(t)
	lower := t.TempDir()
	applyLayers(t, lower, [][]ent{{file("f", "aaaa")}}, ApplyOptions{Whiteouts: DeleteWhiteouts})
	upper := copyTree(t, lower)
	// Same size, same whole-second mtime, other content.
	if err := os.WriteFile(filepath.Join(upper, "f"), []byte("bbbb"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(upper, "f"), epoch, epoch); err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	if err := WriteDiff(context.Background(), &layer, lower, upper); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(layer.String(), "bbbb") {
		t.Errorf("the diff misses the changed content of f")
	}
}

func TestWriteDiffFromUpperRejectsRedirects(t *testing.T) {
	testutil.RequirePrivileged(t)
	upper := t.TempDir()
	if err := os.Mkdir(filepath.Join(upper, "moved"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(upper, "moved"), "trusted.overlay.redirect", []byte("/orig"), 0); err != nil {
		t.Fatal(err)
	}
	err := WriteDiffFromUpper(context.Background(), &bytes.Buffer{}, upper)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("err = %v, want ErrFailedPrecondition", err)
	}
}

// TestWriteDiffRoundTripsNativeChanges runs as any user.
func TestWriteDiffRoundTripsNativeChanges(t *testing.T) {
	lower := t.TempDir()
	base := mine(dir("etc/"), file("etc/keep", "same"), file("etc/mod", "old"), file("etc/gone", "x"),
		dir("d/"), file("d/f", "1"), dir("d/sub/"), file("d/sub/g", "2"), dir("todir/"), file("todir/x", "y"),
		file("tofile", "z"), symlink("link", "etc/keep"), file("hard", "h"), hardlink("hard2", "hard"))
	if _, err := apply(t, lower, mkTar(t, base), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// The changed tree: lower plus a layer of changes.
	upper := t.TempDir()
	if _, err := apply(t, upper, mkTar(t, base), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	mod := file("etc/mod", "new content")
	mod.hdr.ModTime = epoch.Add(time.Hour)
	changes := mine(mod, whiteoutOf("etc/gone"), whiteoutOf("d"), file("todir", "now a file"),
		dir("tofile/"), file("tofile/inside", "i"), symlink("link", "d"), file("new", "n"), hardlink("new2", "new"))
	if _, err := apply(t, upper, mkTar(t, changes), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}

	var layer bytes.Buffer
	if err := WriteDiff(context.Background(), &layer, lower, upper); err != nil {
		t.Fatal(err)
	}
	if _, err := apply(t, lower, layer.Bytes(), ApplyOptions{}); err != nil {
		t.Fatalf("apply the diff: %v", err)
	}
	if diff := cmp.Diff(tree(t, upper, treeOpts{}), tree(t, lower, treeOpts{})); diff != "" {
		t.Errorf("lower + diff differs from upper (-upper +lower):\n%s", diff)
	}
}
