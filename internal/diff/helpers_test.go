package diff

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// ent is one entry of a layer built by a test: a header and, for regular
// files, its content.
type ent struct {
	hdr  tar.Header
	body string
}

// epoch is the mtime of test entries that do not set one.
var epoch = time.Unix(1700000000, 0)

func withDefaults(h tar.Header) tar.Header {
	if h.ModTime.IsZero() {
		h.ModTime = epoch
	}
	if h.Mode == 0 {
		switch h.Typeflag {
		case tar.TypeDir:
			h.Mode = 0o755
		case tar.TypeSymlink:
			h.Mode = 0o777
		default:
			h.Mode = 0o644
		}
	}
	return h
}

func file(name, body string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name}, body: body}
}

func dir(name string) ent { return ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name}} }

func symlink(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target}}
}

func hardlink(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

func whiteoutOf(name string) ent {
	d, b := filepath.Split(name)
	return file(d+whiteoutPrefix+b, "")
}

func opaqueIn(dir string) ent { return file(filepath.Join(dir, opaqueMarker), "") }

// owned sets the owner of every entry; tests that run as a normal user own
// their files.
func owned(uid, gid int, es ...ent) []ent {
	out := make([]ent, len(es))
	for i, e := range es {
		e.hdr.Uid, e.hdr.Gid = uid, gid
		out[i] = e
	}
	return out
}

// mine makes entries owned by the user running the test.
func mine(es ...ent) []ent { return owned(os.Getuid(), os.Getgid(), es...) }

// mkTar writes the entries as a PAX tar.
func mkTar(t testing.TB, es []ent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		h := withDefaults(e.hdr)
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.Format == tar.FormatUnknown {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("write header %q: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func zstded(t testing.TB, b []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

// node is what tree records of one file.
type node struct {
	Type   string
	Mode   fs.FileMode // permission bits with setuid, setgid, sticky
	UID    uint32
	GID    uint32
	Link   string            `json:",omitempty"`
	Rdev   uint64            `json:",omitempty"`
	SHA256 string            `json:",omitempty"`
	Mtime  int64             `json:",omitempty"` // ns; files, symlinks and nodes only
	Xattrs map[string]string `json:",omitempty"`
	Nlink  uint64            `json:",omitempty"` // regular files only
}

// treeOpts selects what tree records.
type treeOpts struct {
	dirMtimes bool
	// xattr selects the xattrs recorded; nil records all.
	xattr func(name string) bool
	// skip, when not nil, leaves out the paths for which it is true and
	// what they hold.
	skip func(rel string) bool
}

// tree returns a comparable snapshot of the tree at root, keyed by path
// relative to root ("." for root): type, mode, owner, link target, device,
// content digest, mtime and xattrs. It never follows symlinks.
func tree(t testing.TB, root string, o treeOpts) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if o.skip != nil && o.skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		n := node{Mode: fs.FileMode(st.Mode & 0o7777), UID: st.Uid, GID: st.Gid}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			n.Type = "dir"
			if o.dirMtimes {
				n.Mtime = st.Mtim.Nano()
			}
		case unix.S_IFREG:
			n.Type = "file"
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			n.SHA256 = hex.EncodeToString(sum[:])
			n.Mtime = st.Mtim.Nano()
			n.Nlink = uint64(st.Nlink)
		case unix.S_IFLNK:
			n.Type = "symlink"
			n.Link, err = os.Readlink(p)
			if err != nil {
				return err
			}
			n.Mode = 0 // meaningless on Linux
			n.Mtime = st.Mtim.Nano()
		case unix.S_IFCHR:
			n.Type, n.Rdev, n.Mtime = "char", uint64(st.Rdev), st.Mtim.Nano()
		case unix.S_IFBLK:
			n.Type, n.Rdev, n.Mtime = "block", uint64(st.Rdev), st.Mtim.Nano()
		case unix.S_IFIFO:
			n.Type, n.Mtime = "fifo", st.Mtim.Nano()
		default:
			n.Type = "other"
		}
		n.Xattrs = xattrsOf(t, p, o.xattr)
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return out
}

func xattrsOf(t testing.TB, p string, keep func(string) bool) map[string]string {
	size, err := unix.Llistxattr(p, nil)
	if err != nil || size == 0 {
		return nil
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("list xattrs of %s: %v", p, err)
	}
	out := map[string]string{}
	for _, name := range strings.Split(strings.TrimSuffix(string(buf[:size]), "\x00"), "\x00") {
		if keep != nil && !keep(name) {
			continue
		}
		v := make([]byte, 64<<10)
		n, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("get xattr %s of %s: %v", name, p, err)
		}
		out[name] = string(v[:n])
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// names lists the keys of a tree, sorted.
func names(tr map[string]node) []string {
	var out []string
	for k := range tr {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
