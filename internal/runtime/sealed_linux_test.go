package runtime

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSealedCopyCannotChange(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "rt")
	want := bytes.Repeat([]byte("runtime binary "), 1000)
	if err := os.WriteFile(bin, want, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := sealedCopy(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<20))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("copy holds %d bytes (%v), want %d", len(got), err, len(want))
	}
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil || seals != runtimeSeals {
		t.Errorf("seals %#x (%v), want %#x", seals, err, runtimeSeals)
	}
	if _, err := f.WriteAt([]byte("x"), 0); err == nil {
		t.Error("wrote into the sealed copy")
	}
	if err := f.Truncate(1); err == nil {
		t.Error("truncated the sealed copy")
	}
}

func TestSealedRuntimesCopyAgainWhenTheBinaryChanges(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "rt")
	if err := os.WriteFile(bin, []byte("v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	var s sealedRuntimes
	first, err := s.get(bin)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.get(bin); again != first {
		t.Error("an unchanged binary was copied again")
	}
	// An upgrade replaces the file (a new inode, as dpkg does).
	next := bin + ".new"
	if err := os.WriteFile(next, []byte("v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(next, time.Now(), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, bin); err != nil {
		t.Fatal(err)
	}
	upgraded, err := s.get(bin)
	if err != nil || upgraded == first {
		t.Fatalf("after an upgrade: %v, same copy %v", err, upgraded == first)
	}
	got := make([]byte, 2)
	if _, err := upgraded.ReadAt(got, 0); err != nil || string(got) != "v2" {
		t.Errorf("the new copy holds %q (%v)", got, err)
	}
	if f, err := s.get(filepath.Join(t.TempDir(), "missing")); err == nil || f != nil {
		t.Errorf("a missing binary: %v, %v", f, err)
	}
}
