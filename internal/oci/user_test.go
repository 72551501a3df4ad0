package oci

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

const (
	testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:1001::/home/bob:/bin/sh
nohome:x:1002:1002:::/bin/sh
big:x:3000000000:1000::/:/bin/sh
neg:x:-5:1000::/:/bin/sh
`
	testGroup = `root:x:0:
alice:x:1000:
bob:x:1001:
devs:x:2000:alice,bob
audio:x:2001:alice
`
)

// testRootfs returns a directory with /etc/passwd and /etc/group.
// readUsers reads the users of the root filesystem at rootfs.
func readUsers(t *testing.T, rootfs string) *ImageUsers {
	t.Helper()
	u, err := ReadImageUsers(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func testRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc/passwd"), testPasswd)
	writeFile(t, filepath.Join(root, "etc/group"), testGroup)
	return root
}

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0644); err != nil {
		t.Fatal(err)
	}
}

func imageConfig(cmd ...string) ocispec.ImageConfig {
	return ocispec.ImageConfig{Cmd: cmd, Env: []string{"PATH=/usr/bin:/bin"}}
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		m[k] = v
	}
	return m
}

func TestValidateUser(t *testing.T) {
	for _, ok := range []string{"alice", "1000", "0", "alice:devs", "1000:2000", "alice:2000", "1000:devs", "2147483647", "www-data", "user.name", "-name"} {
		if err := ValidateUser(ok); err != nil {
			t.Errorf("ValidateUser(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ":", "alice:", ":devs", "a:b:c", "-1", "1000:-1", "4294967295", "4294967294", "2147483648", "99999999999999999999", "al ice", "a\x00", "a\n", strings.Repeat("a", 300)} {
		err := ValidateUser(bad)
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ValidateUser(%q): error %v, want ErrInvalidArgument", bad, err)
		} else if !strings.Contains(err.Error(), "--user") {
			t.Errorf("ValidateUser(%q): error %q does not name the flag", bad, err)
		}
	}
	if err := ValidateUser("4294967295"); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("ValidateUser of a too large uid: %v, want an out of range error", err)
	}
}

func TestResolveUser(t *testing.T) {
	rootfs := testRootfs(t)
	for _, tc := range []struct {
		spec string
		want specs.User
		home string
		err  bool
	}{
		{spec: "", want: specs.User{}, home: "/root"},
		{spec: "root", want: specs.User{}, home: "/root"},
		{spec: "alice", want: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{2000, 2001}}, home: "/home/alice"},
		{spec: "bob", want: specs.User{UID: 1001, GID: 1001, AdditionalGids: []uint32{2000}}, home: "/home/bob"},
		{spec: "1000", want: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{2000, 2001}}, home: "/home/alice"},
		{spec: "alice:devs", want: specs.User{UID: 1000, GID: 2000}, home: "/home/alice"},
		{spec: "1000:1001", want: specs.User{UID: 1000, GID: 1001}, home: "/home/alice"},
		{spec: "alice:3000", want: specs.User{UID: 1000, GID: 3000}, home: "/home/alice"},
		{spec: "5000", want: specs.User{UID: 5000}, home: "/"},
		{spec: "5000:5000", want: specs.User{UID: 5000, GID: 5000}, home: "/"},
		{spec: "nohome", want: specs.User{UID: 1002, GID: 1002}, home: "/"},
		{spec: "nosuch", err: true},
		{spec: "alice:nosuch", err: true},
		{spec: "big", err: true},
		{spec: "neg", err: true},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			u, home, err := resolveUser(rootfs, tc.spec)
			if tc.err {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("error %v, want ErrInvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, u); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
			if home != tc.home {
				t.Errorf("home %q, want %q", home, tc.home)
			}
		})
	}
}

func TestResolveUserWithoutFiles(t *testing.T) {
	for _, rootfs := range []string{"", t.TempDir()} {
		u, home, err := resolveUser(rootfs, "1000:1000")
		if err != nil || u.UID != 1000 || u.GID != 1000 || home != "/" {
			t.Errorf("rootfs %q: numeric user = %+v, %q, %v", rootfs, u, home, err)
		}
		if _, _, err := resolveUser(rootfs, "alice"); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("rootfs %q: named user without /etc/passwd: error %v, want ErrInvalidArgument", rootfs, err)
		}
	}
}

// A symlinked /etc/passwd resolves inside the root filesystem, never to the
// host file it names.
func TestResolveUserSymlinkStaysInRoot(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "passwd"), "evil:x:0:0::/:/bin/sh\n")
	for _, target := range []string{
		filepath.Join(outside, "passwd"),                                         // absolute
		strings.Repeat("../", 20) + strings.TrimPrefix(outside, "/") + "/passwd", // climbing out
	} {
		rootfs := t.TempDir()
		if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(rootfs, "etc/passwd")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := resolveUser(rootfs, "evil"); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("symlink to %s: user from the host file resolved (error %v)", target, err)
		}
		// The same path inside the root filesystem is what the link means.
		writeFile(t, filepath.Join(rootfs, outside, "passwd"), "inside:x:42:43::/:/bin/sh\n")
		u, _, err := resolveUser(rootfs, "inside")
		if err != nil || u.UID != 42 || u.GID != 43 {
			t.Errorf("symlink to %s: user inside the root = %+v, %v; want 42:43", target, u, err)
		}
	}
}

func TestResolveUserRefusesSpecialFiles(t *testing.T) {
	fifo := t.TempDir()
	if err := os.MkdirAll(filepath.Join(fifo, "etc"), 0755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(fifo, "etc/passwd"), 0644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc/passwd"), 0755); err != nil {
		t.Fatal(err)
	}
	big := t.TempDir()
	writeFile(t, filepath.Join(big, "etc/passwd"), strings.Repeat("#\n", maxImageFile/2+1))
	for name, rootfs := range map[string]string{"fifo": fifo, "directory": dir, "too large": big} {
		// A FIFO must not block the open.
		if _, _, err := resolveUser(rootfs, "1000"); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("/etc/passwd is a %s: error %v, want ErrInvalidArgument", name, err)
		}
	}
}
