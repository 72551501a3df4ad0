package snapshotstest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"
)

var cases = []testCase{
	{"PrepareWriteCommitView", testPrepareWriteCommitView},
	{"ChildSeesAndChangesParentFiles", testChildSeesAndChangesParentFiles},
	{"ChildKeepsFileAttributes", testChildKeepsFileAttributes},
	{"ViewIsReadOnly", testViewIsReadOnly},
	{"RemoveRules", testRemoveRules},
	{"KeyAndNameConflicts", testKeyAndNameConflicts},
	{"InvalidArguments", testInvalidArguments},
	{"ParentMustBeCommitted", testParentMustBeCommitted},
	{"CommitRules", testCommitRules},
	{"Stat", testStat},
	{"UpdateLabels", testUpdateLabels},
	{"WalkFilters", testWalkFilters},
	{"Usage", testUsage},
	{"Mounts", testMounts},
	{"Cleanup", testCleanup},
	{"Chain128", testChain128},
	{"ConcurrentPrepares", testConcurrentPrepares},
	{"ConcurrentPreparesSameKey", testConcurrentPreparesSameKey},
	{"CommitWithOpenWriter", testCommitWithOpenWriter},
	{"Reopen", testReopen},
	{"UpperDir", testUpperDir},
}

func testPrepareWriteCommitView(t *testing.T, factory Factory) {
	sn := newSnapshotter(t, factory)
	root, unmount := mountT(t, prepare(t, sn, "a-key", ""))
	writeFile(t, filepath.Join(root, "f"), "hello")
	writeFile(t, filepath.Join(root, "d", "g"), "nested")
	if err := os.Symlink("f", filepath.Join(root, "l")); err != nil {
		t.Fatal(err)
	}
	unmount()
	commit(t, sn, "a", "a-key")

	if info := stat(t, sn, "a"); info.Kind != snapshots.KindCommitted || info.Parent != "" {
		t.Errorf("Stat(a) = %+v, want a committed snapshot without parent", info)
	}
	_, err := sn.Stat(testContext(t), "a-key")
	wantErr(t, "Stat of the committed key", err, errdefs.ErrNotFound)
	inspect(t, sn, "a", func(root string) {
		wantFile(t, filepath.Join(root, "f"), "hello")
		wantFile(t, filepath.Join(root, "d", "g"), "nested")
		if target, err := os.Readlink(filepath.Join(root, "l")); err != nil || target != "f" {
			t.Errorf("Readlink(l) = %q, %v; want \"f\"", target, err)
		}
	})
}

func testChildSeesAndChangesParentFiles(t *testing.T, factory Factory) {
	sn := newSnapshotter(t, factory)
	layer(t, sn, "base", "", func(root string) {
		writeFile(t, filepath.Join(root, "changed"), "1")
		writeFile(t, filepath.Join(root, "deleted"), "2")
		writeFile(t, filepath.Join(root, "replaced", "old"), "3")
		writeFile(t, filepath.Join(root, "kept", "file"), "4")
	})
	layer(t, sn, "child", "base", func(root string) {
		wantFile(t, filepath.Join(root, "changed"), "1")
		writeFile(t, filepath.Join(root, "changed"), "changed")
		if err := os.Remove(filepath.Join(root, "deleted")); err != nil { // an overlay whiteout
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(root, "replaced")); err != nil { // an opaque directory
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, "replaced", "new"), "5")
		writeFile(t, filepath.Join(root, "added"), "6")
	})

	inspect(t, sn, "child", func(root string) {
		wantFile(t, filepath.Join(root, "changed"), "changed")
		wantMissing(t, filepath.Join(root, "deleted"))
		wantMissing(t, filepath.Join(root, "replaced", "old"))
		wantFile(t, filepath.Join(root, "replaced", "new"), "5")
		wantFile(t, filepath.Join(root, "kept", "file"), "4")
		wantFile(t, filepath.Join(root, "added"), "6")
	})
	inspect(t, sn, "base", func(root string) {
		wantFile(t, filepath.Join(root, "changed"), "1")
		wantFile(t, filepath.Join(root, "deleted"), "2")
		wantFile(t, filepath.Join(root, "replaced", "old"), "3")
		wantMissing(t, filepath.Join(root, "added"))
	})
}

// fixedTime is the modification time ChildKeepsFileAttributes sets.
var fixedTime = time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)

func testChildKeepsFileAttributes(t *testing.T, factory Factory) {
	sn := newSnapshotter(t, factory)
	layer(t, sn, "base", "", func(root string) {
		exe := filepath.Join(root, "exe")
		writeFile(t, exe, "#!/bin/sh\n")
		must(t, os.Chown(exe, 1234, 5678))
		must(t, unix.Chmod(exe, 0o4755)) // after chown, which clears setuid
		must(t, unix.Setxattr(exe, "user.berth", []byte("value"), 0))
		must(t, os.Link(exe, filepath.Join(root, "hardlink")))
		must(t, os.Symlink("exe", filepath.Join(root, "symlink")))
		must(t, os.Lchown(filepath.Join(root, "symlink"), 11, 22))
		must(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o600))
		must(t, unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		sticky := filepath.Join(root, "sticky")
		must(t, os.Mkdir(sticky, 0o755))
		must(t, unix.Chmod(sticky, 0o1777))
		must(t, os.Chtimes(exe, fixedTime, fixedTime))
		must(t, os.Chtimes(sticky, fixedTime, fixedTime))
	})
	check := func(root string) {
		t.Helper()
		exe := lstat(t, filepath.Join(root, "exe"))
		if exe.Mode&0o7777 != 0o4755 || exe.Uid != 1234 || exe.Gid != 5678 {
			t.Errorf("exe: mode %o owner %d:%d, want 4755 1234:5678", exe.Mode&0o7777, exe.Uid, exe.Gid)
		}
		if got := time.Unix(exe.Mtim.Unix()); !got.Equal(fixedTime) {
			t.Errorf("exe: mtime %v, want %v", got, fixedTime)
		}
		buf := make([]byte, 64)
		if n, err := unix.Getxattr(filepath.Join(root, "exe"), "user.berth", buf); err != nil || string(buf[:n]) != "value" {
			t.Errorf("exe: xattr user.berth = %q, %v; want \"value\"", buf[:max(n, 0)], err)
		}
		if hl := lstat(t, filepath.Join(root, "hardlink")); hl.Ino != exe.Ino || exe.Nlink != 2 {
			t.Errorf("hardlink: inode %d (exe %d, %d links), want the same inode with 2 links", hl.Ino, exe.Ino, exe.Nlink)
		}
		link := lstat(t, filepath.Join(root, "symlink"))
		target, err := os.Readlink(filepath.Join(root, "symlink"))
		if link.Mode&unix.S_IFMT != unix.S_IFLNK || target != "exe" || link.Uid != 11 || link.Gid != 22 {
			t.Errorf("symlink: mode %o target %q owner %d:%d (%v), want a link to exe owned by 11:22", link.Mode, target, link.Uid, link.Gid, err)
		}
		if fifo := lstat(t, filepath.Join(root, "fifo")); fifo.Mode != unix.S_IFIFO|0o600 {
			t.Errorf("fifo: mode %o, want %o", fifo.Mode, unix.S_IFIFO|0o600)
		}
		if null := lstat(t, filepath.Join(root, "null")); null.Mode&unix.S_IFMT != unix.S_IFCHR || null.Rdev != unix.Mkdev(1, 3) {
			t.Errorf("null: mode %o rdev %#x, want a character device 1:3", null.Mode, null.Rdev)
		}
		sticky := lstat(t, filepath.Join(root, "sticky"))
		if sticky.Mode != unix.S_IFDIR|0o1777 {
			t.Errorf("sticky: mode %o, want %o", sticky.Mode, unix.S_IFDIR|0o1777)
		}
		if got := time.Unix(sticky.Mtim.Unix()); !got.Equal(fixedTime) {
			t.Errorf("sticky: mtime %v, want %v", got, fixedTime)
		}
	}

	root, unmount := mountT(t, prepare(t, sn, "child-key", "base"))
	check(root)
	unmount()
	commit(t, sn, "child", "child-key")
	inspect(t, sn, "child", check)
}

func testViewIsReadOnly(t *testing.T, factory Factory) {
	sn := newSnapshotter(t, factory)
	layer(t, sn, "one", "", func(root string) { writeFile(t, filepath.Join(root, "f1"), "1") })
	layer(t, sn, "two", "one", func(root string) { writeFile(t, filepath.Join(root, "f2"), "2") })
	for _, parent := range []string{"", "one", "two"} {
		root, unmount := mountT(t, view(t, sn, "view on "+parent, parent))
		err := os.WriteFile(filepath.Join(root, "new"), nil, 0o644)
		wantErr(t, fmt.Sprintf("write in a view of %q", parent), err, syscall.EROFS)
		if parent == "two" {
			wantFile(t, filepath.Join(root, "f1"), "1")
			wantFile(t, filepath.Join(root, "f2"), "2")
			err := os.Remove(filepath.Join(root, "f1"))
			wantErr(t, "remove in a view of \"two\"", err, syscall.EROFS)
		}
		unmount()
	}
	if info := stat(t, sn, "view on one"); info.Kind != snapshots.KindView || info.Parent != "one" {
		t.Errorf("Stat(view on one) = %+v, want a view with parent one", info)
	}
}

func testRemoveRules(t *testing.T, factory Factory) {
	ctx := testContext(t)
	sn := newSnapshotter(t, factory)
	layer(t, sn, "parent", "", nil)
	prepare(t, sn, "active child", "parent")
	view(t, sn, "view child", "parent")
	layer(t, sn, "committed child", "parent", nil)

	for _, child := range []string{"active child", "view child", "committed child"} {
		wantErr(t, "Remove(parent) with children", sn.Remove(ctx, "parent"), errdefs.ErrFailedPrecondition)
		remove(t, sn, child)
	}
	remove(t, sn, "parent")
	_, err := sn.Stat(ctx, "parent")
	wantErr(t, "Stat after Remove", err, errdefs.ErrNotFound)
	wantErr(t, "second Remove", sn.Remove(ctx, "parent"), errdefs.ErrNotFound)

	// Removed keys and names can be used again.
	layer(t, sn, "parent", "", nil)
	prepare(t, sn, "active child", "parent")
	if names := walkNames(t, sn); !cmp.Equal(names, []string{"active child", "parent"}) {
		t.Errorf("Walk after recreating = %q, want [active child parent]", names)
	}
}

func testKeyAndNameConflicts(t *testing.T, factory Factory) {
	ctx := testContext(t)
	sn := newSnapshotter(t, factory)
	layer(t, sn, "name", "", nil)
	prepare(t, sn, "key", "")
	prepare(t, sn, "other", "")

	for _, taken := range []string{"key", "name"} {
		_, err := sn.Prepare(ctx, taken, "")
		wantErr(t, fmt.Sprintf("Prepare(%q)", taken), err, errdefs.ErrAlreadyExists)
		_, err = sn.View(ctx, taken, "")
		wantErr(t, fmt.Sprintf("View(%q)", taken), err, errdefs.ErrAlreadyExists)
		err = sn.Commit(ctx, taken, "other")
		wantErr(t, fmt.Sprintf("Commit(%q, other)", taken), err, errdefs.ErrAlreadyExists)
	}
	wantErr(t, "Commit(other, other)", sn.Commit(ctx, "other", "other"), errdefs.ErrAlreadyExists)
	if info := stat(t, sn, "other"); info.Kind != snapshots.KindActive {
		t.Errorf("after refused commits, other is %s, want active", info.Kind)
	}
	if info := stat(t, sn, "key"); info.Kind != snapshots.KindActive {
		t.Errorf("after a refused Prepare, key is %s, want active", info.Kind)
	}
}

func testInvalidArguments(t *testing.T, factory Factory) {
	ctx := testContext(t)
	sn := newSnapshotter(t, factory)
	prepare(t, sn, "k", "")
	_, err := sn.Prepare(ctx, "", "")
	wantErr(t, "Prepare with an empty key", err, errdefs.ErrInvalidArgument)
	_, err = sn.View(ctx, "", "")
	wantErr(t, "View with an empty key", err, errdefs.ErrInvalidArgument)
	wantErr(t, "Commit with an empty name", sn.Commit(ctx, "", "k"), errdefs.ErrInvalidArgument)
	wantErr(t, "Commit with an empty key", sn.Commit(ctx, "n", ""), errdefs.ErrInvalidArgument)
	wantErr(t, "Remove with an empty key", sn.Remove(ctx, ""), errdefs.ErrInvalidArgument)
	_, err = sn.Stat(ctx, "")
	wantErr(t, "Stat with an empty key", err, errdefs.ErrInvalidArgument)
	_, err = sn.Mounts(ctx, "")
	wantErr(t, "Mounts with an empty key", err, errdefs.ErrInvalidArgument)
	_, err = sn.Usage(ctx, "")
	wantErr(t, "Usage with an empty key", err, errdefs.ErrInvalidArgument)

	_, err = sn.Prepare(ctx, "labelled", "", snapshots.WithLabels(map[string]string{"": "v"}))
	wantErr(t, "Prepare with an empty label key", err, errdefs.ErrInvalidArgument)
	_, err = sn.Stat(ctx, "labelled")
	wantErr(t, "Stat after a refused Prepare", err, errdefs.ErrNotFound)
	err = sn.Commit(ctx, "n", "k", snapshots.WithLabels(map[string]string{"": "v"}))
	wantErr(t, "Commit with an empty label key", err, errdefs.ErrInvalidArgument)

	_, err = sn.Update(ctx, snapshots.Info{Name: "k", Parent: "x"}, "parent")
	wantErr(t, "Update(parent)", err, errdefs.ErrInvalidArgument)
	err = sn.Walk(ctx, func(snapshots.Info) error { return nil }, "==x")
	wantErr(t, "Walk with a bad filter", err, errdefs.ErrInvalidArgument)
}

func testParentMustBeCommitted(t *testing.T, factory Factory) {
	ctx := testContext(t)
	sn := newSnapshotter(t, factory)
	prepare(t, sn, "active", "")
	view(t, sn, "view", "")
	for _, tt := range []struct {
		parent string
		kind   error
	}{
		{"missing", errdefs.ErrNotFound},
		{"active", errdefs.ErrFailedPrecondition},
		{"view", errdefs.ErrFailedPrecondition},
	} {
		_, err := sn.Prepare(ctx, "k", tt.parent)
		wantErr(t, fmt.Sprintf("Prepare on parent %q", tt.parent), err, tt.kind)
		_, err = sn.View(ctx, "v", tt.parent)
		wantErr(t, fmt.Sprintf("View on parent %q", tt.parent), err, tt.kind)
	}
	if names := walkNames(t, sn); !cmp.Equal(names, []string{"active", "view"}) {
		t.Errorf("Walk = %q, want only [active view]", names)
	}
}

func testCommitRules(t *testing.T, factory Factory) {
	ctx := testContext(t)
	sn := newSnapshotter(t, factory)
	view(t, sn, "view", "")
	layer(t, sn, "committed", "", nil)
	wantErr(t, "Commit of a view", sn.Commit(ctx, "n", "view"), errdefs.ErrFailedPrecondition)
	wantErr(t, "Commit of a committed snapshot", sn.Commit(ctx, "n", "committed"), errdefs.ErrFailedPrecondition)
	wantErr(t, "Commit of a missing key", sn.Commit(ctx, "n", "missing"), errdefs.ErrNotFound)
	_, err := sn.Stat(ctx, "n")
	wantErr(t, "Stat of a name no commit made", err, errdefs.ErrNotFound)
}

func testStat(t *testing.T, factory Factory) {
	sn := newSnapshotter(t, factory)
	ignoreTimes := cmpopts.IgnoreFields(snapshots.Info{}, "Created", "Updated")
	before := time.Now()
	prepare(t, sn, "a", "", snapshots.WithLabels(map[string]string{"x": "1"}))
	info := stat(t, sn, "a")
	want := snapshots.Info{Kind: snapshots.KindActive, Name: "a", Labels: map[string]string{"x": "1"}}
	if diff := cmp.Diff(want, info, ignoreTimes); diff != "" {
		t.Errorf("Stat(a) mismatch (-want +got):\n%s", diff)
	}
	if info.Created.Before(before.Add(-time.Second)) || info.Created.After(time.Now()) || !info.Updated.Equal(info.Created) {
		t.Errorf("Stat(a) times: created %v, updated %v; want both the time of Prepare", info.Created, info.Updated)
	}

	commit(t, sn, "A", "a", snapshots.WithLabels(map[string]string{"y": "2"}))
	want = snapshots.Info{Kind: snapshots.KindCommitted, Name: "A", Labels: map[string]string{"y": "2"}}
	if diff := cmp.Diff(want, stat(t, sn, "A"), ignoreTimes); diff != "" {
		t.Errorf("Stat(A) mismatch (-want +got); labels come from Commit's options only:\n%s", diff)
	}

	prepare(t, sn, "b", "A")
	view(t, sn, "v", "A")
	want = snapshots.Info{Kind: snapshots.KindActive, Name: "b", Parent: "A"}
	if diff := cmp.Diff(want, stat(t, sn, "b"), ignoreTimes, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Stat(b) mismatch (-want +got):\n%s", diff)
	}
	want = snapshots.Info{Kind: snapshots.KindView, Name: "v", Parent: "A"}
	if diff := cmp.Diff(want, stat(t, sn, "v"), ignoreTimes, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Stat(v) mismatch (-want +got):\n%s", diff)
	}
	_, err := sn.Stat(testContext(t), "missing")
	wantErr(t, "Stat(missing)", err, errdefs.ErrNotFound)
}

func testUpdateLabels(t *testing.T, factory Factory) {
	ctx := testContext(t)
	sn := newSnapshotter(t, factory)
	prepare(t, sn, "a", "", snapshots.WithLabels(map[string]string{"keep": "1", "drop": "2", "change": "3"}))
	layer(t, sn, "c", "", nil)
	orig := stat(t, sn, "a")

	for _, tt := range []struct {
		name       string
		key        string
		labels     map[string]string
		fieldpaths []string
		want       map[string]string
	}{
		{"SomeKeys", "a", map[string]string{"change": "x", "new": "4", "ignored": "5"}, []string{"labels.change", "labels.new", "labels.drop"},
			map[string]string{"keep": "1", "change": "x", "new": "4"}},
		{"AllLabels", "a", map[string]string{"only": "6"}, []string{"labels"}, map[string]string{"only": "6"}},
		{"NoFieldpaths", "a", map[string]string{"other": "7"}, nil, map[string]string{"other": "7"}},
		{"Committed", "c", map[string]string{"berth.io/gc.root": "t"}, nil, map[string]string{"berth.io/gc.root": "t"}},
	} {
		info, err := sn.Update(ctx, snapshots.Info{Name: tt.key, Labels: tt.labels}, tt.fieldpaths...)
		if err != nil {
			t.Fatalf("%s: Update: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, info.Labels); diff != "" {
			t.Errorf("%s: labels returned by Update mismatch (-want +got):\n%s", tt.name, diff)
		}
		if diff := cmp.Diff(tt.want, stat(t, sn, tt.key).Labels); diff != "" {
			t.Errorf("%s: labels in Stat mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
	info := stat(t, sn, "a")
	if !info.Created.Equal(orig.Created) || info.Updated.Before(orig.Updated) || info.Kind != snapshots.KindActive {
		t.Errorf("after Update: %+v; want the same kind and creation time as %+v, and a later update time", info, orig)
	}
	_, err := sn.Update(ctx, snapshots.Info{Name: "missing", Labels: map[string]string{"a": "b"}})
	wantErr(t, "Update(missing)", err, errdefs.ErrNotFound)
	_, err = sn.Update(ctx, snapshots.Info{Name: "a", Labels: map[string]string{"": "b"}})
	wantErr(t, "Update with an empty label key", err, errdefs.ErrInvalidArgument)
}

func testWalkFilters(t *testing.T, factory Factory) {
	ctx := testContext(t)
	sn := newSnapshotter(t, factory)
	layer(t, sn, "base", "", nil, snapshots.WithLabels(map[string]string{"team": "a", "berth.io/gc.root": "x"}))
	prepare(t, sn, "active", "base", snapshots.WithLabels(map[string]string{"team": "b"}))
	view(t, sn, "view", "base")
	layer(t, sn, "other", "", nil)

	for _, tt := range []struct {
		filters []string
		want    []string
	}{
		{nil, []string{"active", "base", "other", "view"}},
		{[]string{"kind==committed"}, []string{"base", "other"}},
		{[]string{"kind==active"}, []string{"active"}},
		{[]string{"kind==view"}, []string{"view"}},
		{[]string{"parent==base"}, []string{"active", "view"}},
		{[]string{"parent"}, []string{"active", "view"}},
		{[]string{"name==other"}, []string{"other"}},
		{[]string{"name~=^(a|b)"}, []string{"active", "base"}},
		{[]string{"labels.team==a"}, []string{"base"}},
		{[]string{"labels.team"}, []string{"active", "base"}},
		{[]string{`labels."berth.io/gc.root"`}, []string{"base"}},
		{[]string{"kind==view", "name==other"}, []string{"other", "view"}},
		{[]string{"kind==active,labels.team==b"}, []string{"active"}},
		{[]string{"kind==active,labels.team==a"}, nil},
	} {
		if diff := cmp.Diff(tt.want, walkNames(t, sn, tt.filters...)); diff != "" {
			t.Errorf("Walk(%q) mismatch (-want +got):\n%s", tt.filters, diff)
		}
	}

	stop := errors.New("stop")
	calls := 0
	err := sn.Walk(ctx, func(snapshots.Info) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Walk with a failing fn: %d calls, error %v; want 1 call and fn's error", calls, err)
	}
	// fn may call the snapshotter, even to remove what it is given.
	err = sn.Walk(ctx, func(info snapshots.Info) error { return sn.Remove(ctx, info.Name) }, "kind==view")
	if err != nil {
		t.Errorf("Walk removing views: %v", err)
	}
	if names := walkNames(t, sn, "kind==view"); len(names) != 0 {
		t.Errorf("views left after removing them in Walk: %q", names)
	}
}

func testUsage(t *testing.T, factory Factory) {
	ctx := testContext(t)
	sn := newSnapshotter(t, factory)
	const size = 1 << 20
	usage := func(key string) snapshots.Usage {
		t.Helper()
		u, err := sn.Usage(ctx, key)
		if err != nil {
			t.Fatalf("Usage(%q): %v", key, err)
		}
		return u
	}

	root, unmount := mountT(t, prepare(t, sn, "a", ""))
	empty := usage("a")
	writeFile(t, filepath.Join(root, "big"), string(randomBytes(size)))
	writeFile(t, filepath.Join(root, "dir", "small"), "x")
	unmount()
	active := usage("a")
	if active.Size-empty.Size < size || active.Inodes-empty.Inodes != 3 {
		t.Errorf("Usage(a) = %+v after writing %d bytes in 3 inodes to %+v", active, size, empty)
	}
	commit(t, sn, "A", "a")
	if got := usage("A"); got.Inodes != active.Inodes || got.Size < size {
		t.Errorf("Usage(A) after Commit = %+v, want %d inodes and at least %d bytes as before", got, active.Inodes, size)
	}

	root, unmount = mountT(t, prepare(t, sn, "b", "A"))
	before := usage("b")
	writeFile(t, filepath.Join(root, "more"), string(randomBytes(size/4)))
	unmount()
	if after := usage("b"); after.Size-before.Size < size/4 || after.Inodes-before.Inodes < 1 {
		t.Errorf("Usage(b) = %+v after writing %d bytes to %+v", after, size/4, before)
	}
	_, err := sn.Usage(ctx, "missing")
	wantErr(t, "Usage(missing)", err, errdefs.ErrNotFound)
}

func testMounts(t *testing.T, factory Factory) {
	ctx := testContext(t)
	sn := newSnapshotter(t, factory)
	layer(t, sn, "base", "", nil)
	for _, tt := range []struct {
		key, parent string
		create      func(testing.TB, snapshots.Snapshotter, string, string, ...snapshots.Opt) []mount.Mount
	}{
		{"active", "", prepare},
		{"active on base", "base", prepare},
		{"view", "", view},
		{"view on base", "base", view},
	} {
		want := tt.create(t, sn, tt.key, tt.parent)
		got, err := sn.Mounts(ctx, tt.key)
		if err != nil {
			t.Fatalf("Mounts(%q): %v", tt.key, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Mounts(%q) mismatch with what it was made with (-want +got):\n%s", tt.key, diff)
		}
	}
	_, err := sn.Mounts(ctx, "base")
	wantErr(t, "Mounts of a committed snapshot", err, errdefs.ErrFailedPrecondition)
	_, err = sn.Mounts(ctx, "missing")
	wantErr(t, "Mounts(missing)", err, errdefs.ErrNotFound)
}

func testCleanup(t *testing.T, factory Factory) {
	ctx := testContext(t)
	sn := newSnapshotter(t, factory)
	layer(t, sn, "keep", "", func(root string) { writeFile(t, filepath.Join(root, "f"), "kept") })
	layer(t, sn, "gone", "", func(root string) { writeFile(t, filepath.Join(root, "f"), "gone") })
	prepare(t, sn, "active", "keep")
	remove(t, sn, "gone")

	if err := sn.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if err := sn.Cleanup(ctx); err != nil {
		t.Fatalf("second Cleanup: %v", err)
	}
	if names := walkNames(t, sn); !cmp.Equal(names, []string{"active", "keep"}) {
		t.Errorf("Walk after Cleanup = %q, want [active keep]", names)
	}
	inspect(t, sn, "keep", func(root string) { wantFile(t, filepath.Join(root, "f"), "kept") })
	mounts, err := sn.Mounts(ctx, "active")
	if err != nil {
		t.Fatal(err)
	}
	root, _ := mountT(t, mounts)
	wantFile(t, filepath.Join(root, "f"), "kept")
}

func testChain128(t *testing.T, factory Factory) {
	const layers = 128
	sn := newSnapshotter(t, factory)
	parent := ""
	for i := range layers {
		name := fmt.Sprintf("layer-%03d", i)
		layer(t, sn, name, parent, func(root string) {
			writeFile(t, filepath.Join(root, name), name)
			writeFile(t, filepath.Join(root, "top"), name)
		})
		parent = name
	}
	check := func(root string) {
		t.Helper()
		wantFile(t, filepath.Join(root, "top"), parent)
		for i := range layers {
			name := fmt.Sprintf("layer-%03d", i)
			wantFile(t, filepath.Join(root, name), name)
		}
	}
	root, _ := mountT(t, prepare(t, sn, "container", parent))
	check(root)
	writeFile(t, filepath.Join(root, "top"), "container")
	inspect(t, sn, parent, check)
}

func testConcurrentPrepares(t *testing.T, factory Factory) {
	const n = 16
	ctx := testContext(t)
	sn := newSnapshotter(t, factory)
	layer(t, sn, "base", "", func(root string) { writeFile(t, filepath.Join(root, "base"), "base") })

	// Cleanup runs throughout and must not disturb snapshots being made.
	stopCleanup := make(chan struct{})
	var cleanups sync.WaitGroup
	cleanups.Go(func() {
		for {
			select {
			case <-stopCleanup:
				return
			default:
			}
			if err := sn.Cleanup(ctx); err != nil {
				t.Errorf("Cleanup: %v", err)
				return
			}
		}
	})

	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("name-%d", i)
			if err := prepareWriteCommit(ctx, sn, name, "base"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	close(stopCleanup)
	cleanups.Wait()

	for i := range n {
		name := fmt.Sprintf("name-%d", i)
		inspect(t, sn, name, func(root string) {
			wantFile(t, filepath.Join(root, "base"), "base")
			wantFile(t, filepath.Join(root, name), name)
		})
	}
}

// prepareWriteCommit makes the committed snapshot name on parent holding a
// file called name, without failing the test, so that goroutines can call
// it.
func prepareWriteCommit(ctx context.Context, sn snapshots.Snapshotter, name, parent string) error {
	key := "extract " + name
	mounts, err := sn.Prepare(ctx, key, parent)
	if err != nil {
		return err
	}
	if err := mount.WithTempMount(ctx, mounts, func(root string) error {
		return os.WriteFile(filepath.Join(root, name), []byte(name), 0o644)
	}); err != nil {
		return err
	}
	return sn.Commit(ctx, name, key)
}

func testConcurrentPreparesSameKey(t *testing.T, factory Factory) {
	const n = 16
	ctx := testContext(t)
	sn := newSnapshotter(t, factory)
	layer(t, sn, "base", "", nil)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if i%2 == 0 {
				_, errs[i] = sn.Prepare(ctx, "same", "base")
			} else {
				_, errs[i] = sn.View(ctx, "same", "base")
			}
		})
	}
	wg.Wait()
	succeeded := 0
	for _, err := range errs {
		if err == nil {
			succeeded++
		} else {
			wantErr(t, "concurrent Prepare or View of one key", err, errdefs.ErrAlreadyExists)
		}
	}
	if succeeded != 1 {
		t.Errorf("%d of %d concurrent Prepare or View calls with one key succeeded, want 1", succeeded, n)
	}
}

// testCommitWithOpenWriter commits an active snapshot while a file in it is
// still open for writing through its mount: Commit must not wait for the
// writer, and what was written before it is in the committed snapshot.
func testCommitWithOpenWriter(t *testing.T, factory Factory) {
	sn := newSnapshotter(t, factory)
	root, unmount := mountT(t, prepare(t, sn, "a", ""))
	f, err := os.Create(filepath.Join(root, "log"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("before commit\n"); err != nil {
		t.Fatal(err)
	}
	commit(t, sn, "A", "a")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	unmount()
	_, err = sn.Mounts(testContext(t), "a")
	wantErr(t, "Mounts of the committed key", err, errdefs.ErrNotFound)
	inspect(t, sn, "A", func(root string) { wantFile(t, filepath.Join(root, "log"), "before commit\n") })
}

func testReopen(t *testing.T, factory Factory) {
	ctx := testContext(t)
	dir := t.TempDir()
	sn, closeFn := open(t, factory, dir)
	layer(t, sn, "base", "", func(root string) { writeFile(t, filepath.Join(root, "f"), "base") })
	prepare(t, sn, "active", "base", snapshots.WithLabels(map[string]string{"l": "v"}))
	view(t, sn, "view", "base")
	want := map[string]snapshots.Info{}
	for _, key := range []string{"base", "active", "view"} {
		want[key] = stat(t, sn, key)
	}
	closeFn()

	sn, _ = open(t, factory, dir)
	got := map[string]snapshots.Info{}
	if err := sn.Walk(ctx, func(info snapshots.Info) error { got[info.Name] = info; return nil }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("snapshots after reopening mismatch (-before +after):\n%s", diff)
	}
	inspect(t, sn, "base", func(root string) { wantFile(t, filepath.Join(root, "f"), "base") })
	mounts, err := sn.Mounts(ctx, "active")
	if err != nil {
		t.Fatal(err)
	}
	root, _ := mountT(t, mounts)
	wantFile(t, filepath.Join(root, "f"), "base")
}

// testUpperDir writes a layer straight into the directory UpperDir gives,
// following the UpperDirer contract for deletions, and checks the result
// through a view after Commit.
func testUpperDir(t *testing.T, factory Factory) {
	ctx := testContext(t)
	sn := newSnapshotter(t, factory)
	ud, ok := sn.(snapshots.UpperDirer)
	if !ok {
		t.Skip("snapshotter does not implement snapshots.UpperDirer")
	}
	layer(t, sn, "base", "", func(root string) {
		writeFile(t, filepath.Join(root, "kept"), "1")
		writeFile(t, filepath.Join(root, "deleted"), "2")
		writeFile(t, filepath.Join(root, "replaced", "old"), "3")
	})
	prepare(t, sn, "a", "base")
	dir, lowers, err := ud.UpperDir(ctx, "a")
	if err != nil {
		t.Fatalf("UpperDir(a): %v", err)
	}
	inLowers := func(rel string) bool {
		for _, l := range lowers {
			if _, err := os.Lstat(filepath.Join(l, rel)); err == nil {
				return true
			}
		}
		return false
	}
	must(t, os.RemoveAll(filepath.Join(dir, "deleted")))
	if inLowers("deleted") {
		must(t, unix.Mknod(filepath.Join(dir, "deleted"), unix.S_IFCHR, 0))
	}
	must(t, os.RemoveAll(filepath.Join(dir, "replaced")))
	must(t, os.Mkdir(filepath.Join(dir, "replaced"), 0o755))
	if inLowers("replaced") {
		must(t, unix.Setxattr(filepath.Join(dir, "replaced"), "trusted.overlay.opaque", []byte("y"), 0))
	}
	writeFile(t, filepath.Join(dir, "replaced", "new"), "4")
	writeFile(t, filepath.Join(dir, "added"), "5")
	commit(t, sn, "A", "a")

	inspect(t, sn, "A", func(root string) {
		wantFile(t, filepath.Join(root, "kept"), "1")
		wantMissing(t, filepath.Join(root, "deleted"))
		wantMissing(t, filepath.Join(root, "replaced", "old"))
		wantFile(t, filepath.Join(root, "replaced", "new"), "4")
		wantFile(t, filepath.Join(root, "added"), "5")
	})

	view(t, sn, "view", "A")
	for _, key := range []string{"A", "view"} {
		_, _, err := ud.UpperDir(ctx, key)
		wantErr(t, fmt.Sprintf("UpperDir(%q)", key), err, errdefs.ErrFailedPrecondition)
	}
	_, _, err = ud.UpperDir(ctx, "missing")
	wantErr(t, "UpperDir(missing)", err, errdefs.ErrNotFound)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func lstat(t testing.TB, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatalf("lstat %s: %v", path, err)
	}
	return st
}

// randomBytes returns n bytes that do not compress or dedupe.
func randomBytes(n int) []byte {
	var key [32]byte
	p := make([]byte, n)
	rand.NewChaCha8(key).Read(p)
	return p
}
