package mount

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		options   []string
		wantFlags uintptr
		wantData  []string
	}{
		{nil, 0, nil},
		{[]string{"bind", "ro"}, unix.MS_BIND | unix.MS_RDONLY, nil},
		{[]string{"rbind", "rw"}, unix.MS_BIND | unix.MS_REC, nil},
		{[]string{"ro", "rw"}, 0, nil},
		{[]string{"nosuid", "nodev", "noexec"}, unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, nil},
		{[]string{"ro", "lowerdir=/a:/b", "index=off"}, unix.MS_RDONLY, []string{"lowerdir=/a:/b", "index=off"}},
	}
	for _, tt := range tests {
		flags, data := parseOptions(tt.options)
		if flags != tt.wantFlags {
			t.Errorf("parseOptions(%q) flags = %#x, want %#x", tt.options, flags, tt.wantFlags)
		}
		if diff := cmp.Diff(tt.wantData, data); diff != "" {
			t.Errorf("parseOptions(%q) data mismatch (-want +got):\n%s", tt.options, diff)
		}
	}
}

func TestCompactLowerdirs(t *testing.T) {
	tests := []struct {
		name    string
		data    []string
		wantDir string
		want    []string
	}{
		{
			name:    "SiblingSnapshots",
			data:    []string{"workdir=/r/s/3/work", "upperdir=/r/s/3/fs", "lowerdir=/r/s/2/fs:/r/s/10/fs:/r/s/1/fs"},
			wantDir: "/r/s",
			want:    []string{"workdir=/r/s/3/work", "upperdir=/r/s/3/fs", "lowerdir=2/fs:10/fs:1/fs"},
		},
		{
			name:    "CommonPrefixIsNotADirectory",
			data:    []string{"lowerdir=/r/s/10/fs:/r/s/11/fs"},
			wantDir: "/r/s",
			want:    []string{"lowerdir=10/fs:11/fs"},
		},
		{
			name:    "DifferentDepths",
			data:    []string{"lowerdir=/a/b/c:/a/d"},
			wantDir: "/a",
			want:    []string{"lowerdir=b/c:d"},
		},
		{
			name:    "OnlyRootInCommon",
			data:    []string{"lowerdir=/a/x:/b/y"},
			wantDir: "/",
			want:    []string{"lowerdir=a/x:b/y"},
		},
		{
			name:    "OneLowerdir",
			data:    []string{"lowerdir=/a/b/c/"},
			wantDir: "/a/b",
			want:    []string{"lowerdir=c"},
		},
		{
			name: "RelativeLowerdir",
			data: []string{"lowerdir=/a/x:b/y"},
			want: []string{"lowerdir=/a/x:b/y"},
		},
		{
			name: "RelativeUpperdir",
			data: []string{"upperdir=u", "lowerdir=/a/x:/a/y"},
			want: []string{"upperdir=u", "lowerdir=/a/x:/a/y"},
		},
		{
			name: "RootAsLowerdir",
			data: []string{"lowerdir=/:/a"},
			want: []string{"lowerdir=/:/a"},
		},
		{
			name: "EscapedColon",
			data: []string{`lowerdir=/a/x\:y:/a/z`},
			want: []string{`lowerdir=/a/x\:y:/a/z`},
		},
		{
			name: "NoLowerdir",
			data: []string{"upperdir=/a/b"},
			want: []string{"upperdir=/a/b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, got := compactLowerdirs(tt.data)
			if dir != tt.wantDir {
				t.Errorf("dir = %q, want %q", dir, tt.wantDir)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("data mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAllRejectsOverlongOptions(t *testing.T) {
	// Relative lowerdirs cannot be compacted; the check happens before mount(2).
	lower := "lowerdir=" + strings.Repeat("x", os.Getpagesize())
	err := All([]Mount{{Type: "overlay", Source: "overlay", Options: []string{lower}}}, t.TempDir())
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("All with %d bytes of options: got %v, want ErrInvalidArgument", len(lower), err)
	}
}

func TestAllRejectsDataOnBindMounts(t *testing.T) {
	err := All([]Mount{{Type: "bind", Source: t.TempDir(), Options: []string{"bind", "size=1m"}}}, t.TempDir())
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("All(bind with size=1m): got %v, want ErrInvalidArgument", err)
	}
}

func TestAllOverlayWithLongLowerdirs(t *testing.T) {
	testutil.RequirePrivileged(t)
	const layers = 128
	base := filepath.Join(t.TempDir(), "layers-with-a-long-directory-name")
	var lowers []string
	for i := range layers {
		dir := filepath.Join(base, fmt.Sprintf("layer-%03d", i))
		mkdirAll(t, dir)
		writeFile(t, filepath.Join(dir, fmt.Sprintf("file-%03d", i)), "")
		writeFile(t, filepath.Join(dir, "top"), fmt.Sprint(i))
		lowers = append([]string{dir}, lowers...) // nearest (highest) first
	}
	upper, work, target := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{upper, work, target} {
		mkdirAll(t, d)
	}
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{
		"workdir=" + work, "upperdir=" + upper, "lowerdir=" + strings.Join(lowers, ":"),
	}}
	if n := optionsLen(m.Options); n <= 4096 {
		t.Fatalf("options are %d bytes; the test needs more than 4096", n)
	}
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}

	mountT(t, []Mount{m}, target)

	if got := readFile(t, filepath.Join(target, "top")); got != fmt.Sprint(layers-1) {
		t.Errorf("top = %q, want %q (from the nearest lowerdir)", got, fmt.Sprint(layers-1))
	}
	for _, name := range []string{"file-000", fmt.Sprintf("file-%03d", layers-1)} {
		if _, err := os.Stat(filepath.Join(target, name)); err != nil {
			t.Errorf("merged view: %v", err)
		}
	}
	writeFile(t, filepath.Join(target, "new"), "x")
	if _, err := os.Stat(filepath.Join(upper, "new")); err != nil {
		t.Errorf("write through the overlay did not reach the upper dir: %v", err)
	}
	if got, err := os.Getwd(); err != nil || got != cwd {
		t.Errorf("working directory after mount = %q, %v; want %q", got, err, cwd)
	}
}

func TestAllBindReadOnly(t *testing.T) {
	testutil.RequirePrivileged(t)
	src, target := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "f"), "data")

	mountT(t, []Mount{{Type: "bind", Source: src, Options: []string{"bind", "ro"}}}, target)

	if got := readFile(t, filepath.Join(target, "f")); got != "data" {
		t.Errorf("f through the bind mount = %q, want %q", got, "data")
	}
	wantEROFS(t, os.WriteFile(filepath.Join(target, "g"), nil, 0o644))
	writeFile(t, filepath.Join(src, "g"), "") // the source stays writable
}

func TestAllRbindReadOnlyIsRecursive(t *testing.T) {
	testutil.RequirePrivileged(t)
	src, sub, target := t.TempDir(), t.TempDir(), t.TempDir()
	mkdirAll(t, filepath.Join(src, "sub"))
	mountT(t, []Mount{{Type: "bind", Source: sub, Options: []string{"bind"}}}, filepath.Join(src, "sub"))

	mountT(t, []Mount{{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}, target)
	t.Cleanup(func() { unmountAllT(t, filepath.Join(target, "sub")) })

	wantEROFS(t, os.WriteFile(filepath.Join(target, "f"), nil, 0o644))
	wantEROFS(t, os.WriteFile(filepath.Join(target, "sub", "f"), nil, 0o644))
	writeFile(t, filepath.Join(sub, "f"), "") // the submount's source stays writable
}

func TestAllUndoesEarlierMountsOnFailure(t *testing.T) {
	testutil.RequirePrivileged(t)
	src, target := t.TempDir(), t.TempDir()
	t.Cleanup(func() { unmountAllT(t, target) })
	err := All([]Mount{
		{Type: "bind", Source: src, Options: []string{"bind"}},
		{Type: "bind", Source: filepath.Join(src, "missing"), Options: []string{"bind"}},
	}, target)
	if !errors.Is(err, unix.ENOENT) {
		t.Errorf("All with a missing bind source: got %v, want ENOENT", err)
	}
	if isMounted(t, target) {
		t.Errorf("%s is still mounted after All failed", target)
	}
}

func TestUnmountAllUnstacksEveryMount(t *testing.T) {
	testutil.RequirePrivileged(t)
	target := t.TempDir()
	var mounts []Mount
	for range 3 {
		mounts = append(mounts, Mount{Type: "bind", Source: t.TempDir(), Options: []string{"bind"}})
	}
	if err := All(mounts, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmountAllT(t, target) })
	if err := UnmountAll(target); err != nil {
		t.Fatalf("UnmountAll: %v", err)
	}
	if isMounted(t, target) {
		t.Errorf("%s is still mounted after UnmountAll", target)
	}
	if err := UnmountAll(target); err != nil {
		t.Errorf("UnmountAll on a directory with nothing mounted: %v", err)
	}
	if err := UnmountAll(filepath.Join(target, "missing")); err != nil {
		t.Errorf("UnmountAll on a missing path: %v", err)
	}
	if err := Unmount(target, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("Unmount on a directory with nothing mounted: got %v, want EINVAL", err)
	}
}

func TestWithTempMount(t *testing.T) {
	testutil.RequirePrivileged(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), "data")
	mounts := []Mount{{Type: "bind", Source: src, Options: []string{"bind", "ro"}}}

	var root string
	err := WithTempMount(t.Context(), mounts, func(r string) error {
		root = r
		if got := readFile(t, filepath.Join(r, "f")); got != "data" {
			t.Errorf("f = %q, want %q", got, "data")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("WithTempMount: %v", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary mount point %s: stat error %v, want it removed", root, err)
	}

	fnErr := errors.New("from fn")
	if err := WithTempMount(t.Context(), mounts, func(string) error { return fnErr }); !errors.Is(err, fnErr) {
		t.Errorf("WithTempMount returned %v, want fn's error", err)
	}
}

func TestWithTempMountDetachesBusyMounts(t *testing.T) {
	testutil.RequirePrivileged(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), "data")
	var open *os.File
	var root string
	err := WithTempMount(t.Context(), []Mount{{Type: "bind", Source: src, Options: []string{"bind"}}}, func(r string) error {
		root = r
		var err error
		open, err = os.Open(filepath.Join(r, "f")) // keeps the mount busy
		return err
	})
	if err != nil {
		t.Fatalf("WithTempMount: %v", err)
	}
	defer open.Close()
	if isMounted(t, root) {
		t.Errorf("%s is still mounted", root)
	}
}

// mountT performs mounts on target and unmounts them when t ends.
func mountT(t *testing.T, mounts []Mount, target string) {
	t.Helper()
	if err := All(mounts, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmountAllT(t, target) })
}

func unmountAllT(t *testing.T, target string) {
	t.Helper()
	if err := UnmountAll(target); err != nil {
		t.Error(err)
	}
}

// isMounted reports whether something is mounted on path, per
// /proc/self/mountinfo.
func isMounted(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && fields[4] == path {
			return true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return false
}

func wantEROFS(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, unix.EROFS) {
		t.Errorf("write on a read-only mount: got %v, want EROFS", err)
	}
}

func mkdirAll(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
