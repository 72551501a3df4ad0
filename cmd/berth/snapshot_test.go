package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/google/go-cmp/cmp"
)

var testSnapshots = []client.Snapshot{
	{Name: "sha256:1111", Kind: client.SnapshotCommitted, CreatedAt: testNow.Add(-2 * time.Hour)},
	{Name: "sha256:2222", Parent: "sha256:1111", Kind: client.SnapshotCommitted, CreatedAt: testNow.Add(-time.Hour),
		Labels: map[string]string{"team": "web"}},
	{Name: "ctr-1", Parent: "sha256:2222", Kind: client.SnapshotActive, CreatedAt: testNow.Add(-3 * time.Second)},
}

func TestSnapshotOutputs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		print func(io.Writer) error
		want  string
	}{
		{
			name:  "ls table",
			print: func(w io.Writer) error { return printSnapshots(w, output{format: formatTable}, testNow, testSnapshots) },
			want: "" +
				"NAME          PARENT        KIND        CREATED\n" +
				"sha256:1111                 committed   2 hours ago\n" +
				"sha256:2222   sha256:1111   committed   1 hour ago\n" +
				"ctr-1         sha256:2222   active      3 seconds ago\n",
		},
		{
			name: "ls quiet",
			print: func(w io.Writer) error {
				return printSnapshots(w, output{quiet: true, format: formatTable}, testNow, testSnapshots)
			},
			want: "sha256:1111\nsha256:2222\nctr-1\n",
		},
		{
			name:  "ls empty json",
			print: func(w io.Writer) error { return printSnapshots(w, output{format: formatJSON}, testNow, nil) },
			want:  "[]\n",
		},
		{
			name: "usage table",
			print: func(w io.Writer) error {
				return printSnapshotUsage(w, output{format: formatTable}, []snapshotUsage{
					{Name: "sha256:1111", SnapshotUsage: client.SnapshotUsage{Size: 2203648, Inodes: 27}},
					{Name: "ctr-1", SnapshotUsage: client.SnapshotUsage{Size: 4096, Inodes: 1}},
				})
			},
			want: "" +
				"NAME          SIZE      INODES\n" +
				"sha256:1111   2.1 MiB   27\n" +
				"ctr-1         4 KiB     1\n",
		},
		{
			name: "usage json",
			print: func(w io.Writer) error {
				return printSnapshotUsage(w, output{format: formatJSON}, []snapshotUsage{{Name: "a", SnapshotUsage: client.SnapshotUsage{Size: 10, Inodes: 2}}})
			},
			want: "[\n  {\n    \"name\": \"a\",\n    \"size\": 10,\n    \"inodes\": 2\n  }\n]\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tc.print(&buf); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, buf.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSnapshotJSONKeepsKindAsWord(t *testing.T) {
	var buf bytes.Buffer
	if err := printSnapshots(&buf, output{format: formatJSON}, testNow, testSnapshots[1:2]); err != nil {
		t.Fatal(err)
	}
	var raw []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if raw[0]["kind"] != "committed" || raw[0]["parent"] != "sha256:1111" || raw[0]["name"] != "sha256:2222" {
		t.Errorf("json = %s", buf.String())
	}
}

func TestMountCommand(t *testing.T) {
	for _, tc := range []struct {
		m      client.Mount
		target string
		want   string
	}{
		{
			client.Mount{Type: "overlay", Source: "overlay", Options: []string{"index=off", "lowerdir=/r/snapshots/2/fs:/r/snapshots/1/fs", "upperdir=/r/snapshots/3/fs", "workdir=/r/snapshots/3/work"}},
			"",
			"mount -t overlay overlay -o index=off,lowerdir=/r/snapshots/2/fs:/r/snapshots/1/fs,upperdir=/r/snapshots/3/fs,workdir=/r/snapshots/3/work",
		},
		{
			client.Mount{Type: "bind", Source: "/r/snapshots/4/fs", Options: []string{"rbind", "ro"}},
			"/mnt",
			"mount -t bind /r/snapshots/4/fs -o rbind,ro /mnt",
		},
		{
			client.Mount{Type: "bind", Source: "/var/lib/my berth/fs", Options: nil},
			"/tmp/it's here",
			`mount -t bind '/var/lib/my berth/fs' '/tmp/it'\''s here'`,
		},
		{
			client.Mount{Type: "tmpfs", Source: ""},
			"",
			"mount -t tmpfs ''",
		},
	} {
		if got := mountCommand(tc.m, tc.target); got != tc.want {
			t.Errorf("mountCommand(%+v, %q)\n got %s\nwant %s", tc.m, tc.target, got, tc.want)
		}
	}
}

func TestSnapshotCommandUsage(t *testing.T) {
	sock := noDaemon(t)
	for _, tc := range []struct {
		args []string
		want string
		hint string
	}{
		{[]string{"snapshot", "frob"}, `unknown command "frob" for "berth snapshot"`, "berth snapshot"},
		{[]string{"snapshot", "ls", "x"}, "accepts no arguments", "berth snapshot ls"},
		{[]string{"snapshot", "info"}, "requires exactly 1 argument, got 0", "berth snapshot info"},
		{[]string{"snapshot", "rm"}, "requires at least 1 argument, got 0", "berth snapshot rm"},
		{[]string{"snapshot", "mounts"}, "requires a key and optionally a target, got 0 arguments", "berth snapshot mounts"},
		{[]string{"snapshot", "mounts", "a", "b", "c"}, "got 3 arguments", "berth snapshot mounts"},
		{[]string{"snapshot", "label", "a"}, "requires at least 2 arguments", "berth snapshot label"},
		{[]string{"snapshot", "usage", "--format", "yaml"}, "want table or json", "berth snapshot usage"},
		{[]string{"df", "x"}, `"berth df" accepts no arguments`, "berth df"},
		{[]string{"df", "-q"}, "unknown shorthand flag: 'q'", "berth df"},
	} {
		code, stdout, stderr := runBerth(t, append([]string{"--address", sock}, tc.args...)...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, tc.want) || !strings.HasSuffix(stderr, "Run '"+tc.hint+" --help' for usage.\n") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
	for _, args := range [][]string{{"snapshot", "ls"}, {"snapshot", "usage"}, {"snapshot", "rm", "x"}, {"snapshot", "mounts", "k"}, {"df", "-v"}} {
		code, _, stderr := runBerth(t, append([]string{"--address", sock}, args...)...)
		if code != exitError || !strings.Contains(stderr, "is it running?") {
			t.Errorf("%v without a daemon: exit %d, stderr %q", args, code, stderr)
		}
	}
}
