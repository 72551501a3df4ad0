package shim

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRuntimeError(t *testing.T) {
	for _, tc := range []struct {
		name, log, want string
	}{
		{
			name: "runc",
			log: `{"level":"warning","msg":"cgroup: something","time":"2026-11-23T08:53:53Z"}` + "\n" +
				`{"level":"error","msg":"runc create failed: unable to start container process: exec: \"nope\": executable file not found in $PATH","time":"2026-11-23T08:53:53Z"}` + "\n",
			want: `runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH`,
		},
		{
			name: "crun",
			log:  `{"msg":"cgroups in hybrid mode not supported, drop all controllers from cgroupv2","level":"error","time":"2026-11-23T08:53:55.048295Z"}`,
			want: "cgroups in hybrid mode not supported, drop all controllers from cgroupv2",
		},
		{
			name: "several errors",
			log:  `{"level":"error","msg":"one"}` + "\n" + `{"level":"fatal","msg":"two"}`,
			want: "one; two",
		},
		{
			name: "no error level",
			log:  `{"level":"warning","msg":"odd"}` + "\n" + "plain text\n",
			want: "odd; plain text",
		},
		{name: "empty", log: "", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log.json")
			if err := os.WriteFile(path, []byte(tc.log), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := runtimeError(path); got != tc.want {
				t.Errorf("runtimeError = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadOOMKills(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          uint64
		err           bool
	}{
		{"v1 oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", 3, false},
		{"v2 memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n", 2, false},
		{"old kernel", "oom_kill_disable 0\nunder_oom 0\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readOOMKills(path)
			if got != tc.want || (err != nil) != tc.err {
				t.Errorf("readOOMKills = %d, %v; want %d, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestLinkRuntimeCopyNamesTheProcessLikeTheRuntime(t *testing.T) {
	t.Chdir(t.TempDir()) // the shim works in its bundle
	exe, err := linkRuntimeCopy("/usr/sbin/runc", 4)
	if err != nil || exe != "./runc" {
		t.Fatalf("link: %q, %v", exe, err)
	}
	if target, err := os.Readlink("runc"); err != nil || target != "/proc/self/fd/4" {
		t.Errorf("runc links to %q (%v)", target, err)
	}
	// Again (a restarted shim) replaces the link.
	if exe, err := linkRuntimeCopy("/usr/sbin/runc", 5); err != nil || exe != "./runc" {
		t.Fatalf("link again: %q, %v", exe, err)
	}
	// Names of the bundle's own files are never taken.
	for _, rt := range []string{"/x/config.json", "/x/shim.sock", "/x/rootfs", "/x/.hidden"} {
		if exe, err := linkRuntimeCopy(rt, 4); err != nil || exe != "/proc/self/fd/4" {
			t.Errorf("runtime %s: %q, %v", rt, exe, err)
		}
	}
}
