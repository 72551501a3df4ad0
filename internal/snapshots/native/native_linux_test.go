package native

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/berth-dev/berth/internal/snapshots/snapshotstest"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func factory(ctx context.Context, root string) (snapshots.Snapshotter, error) {
	return New(root)
}

func TestSnapshotter(t *testing.T) {
	testutil.RequirePrivileged(t)
	snapshotstest.Run(t, factory)
}

func BenchmarkPrepareCommit(b *testing.B) {
	testutil.RequirePrivileged(b)
	snapshotstest.BenchPrepareCommit(b, factory)
}

func TestMountsAreBindMounts(t *testing.T) {
	ctx := t.Context()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	fs := func(key string) string {
		t.Helper()
		snap, err := s.store.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return s.store.FS(snap.ID)
	}
	if _, err := s.Prepare(ctx, "base-key", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "base", "base-key"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, key, parent string
		create            func(context.Context, string, string, ...snapshots.Opt) ([]mount.Mount, error)
		source            func() string
		mode              string
	}{
		{"Active", "a", "base", s.Prepare, func() string { return fs("a") }, "rw"},
		{"ViewWithoutParent", "v0", "", s.View, func() string { return fs("v0") }, "ro"},
		{"ViewOnParentIsNoCopy", "v1", "base", s.View, func() string { return fs("base") }, "ro"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.create(ctx, tt.key, tt.parent)
			if err != nil {
				t.Fatal(err)
			}
			want := []mount.Mount{{Type: "bind", Source: tt.source(), Options: []string{"bind", tt.mode}}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("mounts mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCopyTreeKeepsTypesAttributesAndLinks(t *testing.T) {
	testutil.RequirePrivileged(t)
	src, dst := filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "dst")
	must(t, os.Mkdir(src, 0o755))
	must(t, os.Mkdir(dst, 0o755))
	old := time.Date(2000, 1, 2, 3, 4, 5, 6, time.UTC)

	must(t, os.WriteFile(filepath.Join(src, "empty"), nil, 0o640))
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB: several copy_file_range chunks
	must(t, os.WriteFile(filepath.Join(src, "big"), big, 0o644))
	must(t, os.MkdirAll(filepath.Join(src, "a", "b", "c"), 0o750))
	must(t, os.WriteFile(filepath.Join(src, "a", "b", "c", "deep"), []byte("deep"), 0o600))
	must(t, os.Link(filepath.Join(src, "a", "b", "c", "deep"), filepath.Join(src, "deep-link")))
	must(t, os.Link(filepath.Join(src, "a", "b", "c", "deep"), filepath.Join(src, "a", "other-link")))
	must(t, os.Symlink("/dangling/target", filepath.Join(src, "a", "symlink")))
	must(t, unix.Mknod(filepath.Join(src, "blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))))
	must(t, unix.Mknod(filepath.Join(src, "chr"), unix.S_IFCHR|0o620, int(unix.Mkdev(4, 1))))
	must(t, unix.Mkfifo(filepath.Join(src, "fifo"), 0o644))
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(src, "sock"), Net: "unix"})
	must(t, err)
	l.SetUnlinkOnClose(false)
	l.Close()
	must(t, unix.Setxattr(filepath.Join(src, "big"), "user.one", []byte("1"), 0))
	must(t, unix.Setxattr(filepath.Join(src, "big"), "trusted.two", bytes.Repeat([]byte{2}, 3000), 0))
	must(t, unix.Setxattr(filepath.Join(src, "a"), "trusted.overlay.opaque", []byte("y"), 0))
	must(t, os.Lchown(filepath.Join(src, "a", "symlink"), 7, 8))
	must(t, os.Chown(filepath.Join(src, "a", "b"), 100, 200))
	must(t, unix.Chmod(filepath.Join(src, "a", "b"), 0o2775))
	must(t, unix.Chmod(src, 0o711))
	must(t, unix.Lutimes(filepath.Join(src, "a", "symlink"), []unix.Timeval{unix.NsecToTimeval(old.UnixNano()), unix.NsecToTimeval(old.UnixNano())}))
	must(t, os.Chtimes(filepath.Join(src, "chr"), old, old.Add(time.Hour)))
	for _, p := range []string{"a/b/c", "a/b", "a", "."} { // children first, so times stay
		must(t, os.Chtimes(filepath.Join(src, p), old, old))
	}

	if err := copyTree(t.Context(), src, dst); err != nil {
		t.Fatalf("copyTree: %v", err)
	}
	if diff := cmp.Diff(describeTree(t, src), describeTree(t, dst)); diff != "" {
		t.Errorf("copy differs from the source (-src +dst):\n%s", diff)
	}
}

func TestCopyTreeStopsWhenCancelled(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "f"), nil, 0o644))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := copyTree(ctx, src, dst); !errors.Is(err, context.Canceled) {
		t.Errorf("copyTree with a cancelled context: got %v, want context.Canceled", err)
	}
}

// entry describes a file for comparison; Link names the first path (in walk
// order) of the same inode, for hard links.
type entry struct {
	Mode, UID, GID uint32
	Size           int64
	Rdev           uint64
	Atime, Mtime   unix.Timespec
	Data, Target   string
	Xattrs         map[string]string
	Link           string
}

func describeTree(t *testing.T, root string) map[string]entry {
	t.Helper()
	tree := map[string]entry{}
	firstPath := map[uint64]string{}
	err := filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		e := entry{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Size: st.Size, Rdev: st.Rdev, Mtime: st.Mtim, Xattrs: xattrs(t, path)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
			e.Atime = st.Atim // only these are not read, by copyTree or below
		case unix.S_IFREG:
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			e.Data = string(b)
		case unix.S_IFLNK:
			e.Target, _ = os.Readlink(path)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 {
			if first, ok := firstPath[st.Ino]; ok {
				e.Link = first
			} else {
				firstPath[st.Ino] = rel
			}
		}
		tree[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func xattrs(t *testing.T, path string) map[string]string {
	t.Helper()
	names, err := xattr(func(buf []byte) (int, error) { return unix.Llistxattr(path, buf) })
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for name := range strings.SplitSeq(strings.TrimSuffix(string(names), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		v, err := xattr(func(buf []byte) (int, error) { return unix.Lgetxattr(path, name, buf) })
		if err != nil {
			t.Fatal(err)
		}
		m[name] = string(v)
	}
	return m
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
