package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/google/go-cmp/cmp"
)

func TestParseLabels(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		allowEmpty bool
		want       map[string]string
		wantErr    string
	}{
		{args: nil, want: map[string]string{}},
		{args: []string{"a=1", "b=x=y"}, want: map[string]string{"a": "1", "b": "x=y"}},
		{args: []string{"a=1", "a=2"}, want: map[string]string{"a": "2"}},
		{args: []string{"berth.io/gc.root=", "b=2"}, allowEmpty: true, want: map[string]string{"berth.io/gc.root": "", "b": "2"}},
		{args: []string{"a="}, wantErr: `label "a=": empty value`},
		{args: []string{"a"}, allowEmpty: true, wantErr: `label "a": want KEY=VALUE`},
		{args: []string{"=v"}, allowEmpty: true, wantErr: `label "=v": empty key`},
	} {
		got, err := parseLabels(tc.args, tc.allowEmpty)
		if tc.wantErr != "" {
			var uerr *usageError
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &uerr) {
				t.Errorf("parseLabels(%q) error %v, want a usage error %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseLabels(%q): %v", tc.args, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("parseLabels(%q) (-want +got):\n%s", tc.args, diff)
		}
	}
}

func TestLabelsFlagRejectsBadValues(t *testing.T) {
	l := labelsFlag{}
	for _, s := range []string{"a=1", "b=2", "a=3"} {
		if err := l.Set(s); err != nil {
			t.Fatalf("Set(%q): %v", s, err)
		}
	}
	if got, want := l.String(), "a=3,b=2"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for _, s := range []string{"a", "=1", "a="} {
		if err := l.Set(s); err == nil {
			t.Errorf("Set(%q) succeeded, want an error", s)
		}
	}
}

func TestHumanSize(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1 KiB"},
		{1536, "1.5 KiB"},
		{1572864, "1.5 MiB"},
		{1258291, "1.2 MiB"},
		{10 * 1024 * 1024, "10 MiB"},
		{1024*1024 - 1, "1 MiB"}, // rounds up a unit, never "1024 KiB"
		{300000000, "286.1 MiB"},
		{5 << 30, "5 GiB"},
		{3 << 40, "3 TiB"},
		{1 << 62, "4 EiB"},
		{-5, "-5 B"},
	} {
		if got := humanSize(tc.n); got != tc.want {
			t.Errorf("humanSize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestRelativeTime(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "-"},
		{time.Time{}, "-"}, // an unset API timestamp
		{now, "just now"},
		{now.Add(-999 * time.Millisecond), "just now"},
		{now.Add(-time.Second), "1 second ago"},
		{now.Add(-3 * time.Second), "3 seconds ago"},
		{now.Add(-59 * time.Second), "59 seconds ago"},
		{now.Add(-time.Minute), "1 minute ago"},
		{now.Add(-90 * time.Minute), "1 hour ago"},
		{now.Add(-36 * time.Hour), "36 hours ago"},
		{now.Add(-3 * day), "3 days ago"},
		{now.Add(-15 * day), "2 weeks ago"},
		{now.Add(-90 * day), "3 months ago"},
		{now.Add(-400 * day), "1 year ago"},
		{now.Add(-800 * day), "2 years ago"},
		{now.Add(59*time.Minute + 30*time.Second), "in 59 minutes"},
		{now.Add(2 * time.Hour), "in 2 hours"},
		{now.Add(500 * time.Millisecond), "just now"},
	} {
		if got := relativeTime(now, tc.t); got != tc.want {
			t.Errorf("relativeTime(now-%v) = %q, want %q", now.Sub(tc.t), got, tc.want)
		}
	}
}

func TestPlural(t *testing.T) {
	for n, want := range map[int64]string{0: "0 blobs", 1: "1 blob", 2: "2 blobs"} {
		if got := plural(n, "blob"); got != want {
			t.Errorf("plural(%d) = %q, want %q", n, got, want)
		}
	}
}

var (
	testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	blobs   = []client.BlobInfo{
		{Digest: "sha256:aaaa", Size: 1572864, CreatedAt: testNow.Add(-3 * time.Second), Labels: map[string]string{"b": "2", "a": "1"}},
		{Digest: "sha256:bbbb", Size: 12, CreatedAt: testNow.Add(-2 * time.Hour)},
	}
)

func TestListOutputs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		out   output
		print func(io.Writer, output) error
		want  string
	}{
		{
			name:  "blobs table",
			out:   output{format: formatTable},
			print: func(w io.Writer, o output) error { return printBlobs(w, o, testNow, blobs) },
			want: "" +
				"DIGEST        SIZE      AGE             LABELS\n" +
				"sha256:aaaa   1.5 MiB   3 seconds ago   a=1,b=2\n" +
				"sha256:bbbb   12 B      2 hours ago     \n",
		},
		{
			name:  "blobs quiet",
			out:   output{quiet: true, format: formatTable},
			print: func(w io.Writer, o output) error { return printBlobs(w, o, testNow, blobs) },
			want:  "sha256:aaaa\nsha256:bbbb\n",
		},
		{
			name:  "quiet wins over json",
			out:   output{quiet: true, format: formatJSON},
			print: func(w io.Writer, o output) error { return printBlobs(w, o, testNow, blobs) },
			want:  "sha256:aaaa\nsha256:bbbb\n",
		},
		{
			name:  "empty json list is an array",
			out:   output{format: formatJSON},
			print: func(w io.Writer, o output) error { return printBlobs(w, o, testNow, nil) },
			want:  "[]\n",
		},
		{
			name:  "empty table has headers",
			out:   output{format: formatTable},
			print: func(w io.Writer, o output) error { return printNamespaces(w, o, nil) },
			want:  "NAME   LABELS\n",
		},
		{
			name: "namespaces table",
			out:  output{format: formatTable},
			print: func(w io.Writer, o output) error {
				return printNamespaces(w, o, []client.Namespace{{Name: "default"}, {Name: "k8s.io", Labels: map[string]string{"owner": "kubelet"}}})
			},
			want: "" +
				"NAME      LABELS\n" +
				"default   \n" +
				"k8s.io    owner=kubelet\n",
		},
		{
			name: "leases table",
			out:  output{format: formatTable},
			print: func(w io.Writer, o output) error {
				return printLeases(w, o, testNow, []client.Lease{
					{ID: "pull-1", CreatedAt: testNow.Add(-time.Minute), Labels: map[string]string{client.LabelLeaseExpire: testNow.Add(time.Hour).Format(time.RFC3339)}},
					{ID: "old", CreatedAt: testNow.Add(-3 * time.Hour), Labels: map[string]string{client.LabelLeaseExpire: testNow.Add(-2 * time.Minute).Format(time.RFC3339)}},
					{ID: "forever", CreatedAt: testNow.Add(-24 * time.Hour)},
					{ID: "odd", CreatedAt: testNow, Labels: map[string]string{client.LabelLeaseExpire: "tomorrow"}},
				})
			},
			want: "" +
				"ID        CREATED        EXPIRES                 LABELS\n" +
				"pull-1    1 minute ago   in 1 hour               berth.io/gc.expire=2026-03-01T13:00:00Z\n" +
				"old       3 hours ago    expired 2 minutes ago   berth.io/gc.expire=2026-03-01T11:58:00Z\n" +
				"forever   24 hours ago   never                   \n" +
				"odd       just now       tomorrow                berth.io/gc.expire=tomorrow\n",
		},
		{
			name: "ingests table",
			out:  output{format: formatTable},
			print: func(w io.Writer, o output) error {
				return printIngests(w, o, testNow, []client.IngestStatus{
					{Ref: "layer-1", Offset: 2 << 20, Total: 10 << 20, StartedAt: testNow.Add(-5 * time.Second)},
					{Ref: "stdin", Offset: 100, StartedAt: testNow.Add(-time.Minute)},
				})
			},
			want: "" +
				"REF       OFFSET   TOTAL    STARTED\n" +
				"layer-1   2 MiB    10 MiB   5 seconds ago\n" +
				"stdin     100 B    -        1 minute ago\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tc.print(&buf, tc.out); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, buf.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestListJSONIsAnArrayOfClientObjects(t *testing.T) {
	var buf bytes.Buffer
	if err := printBlobs(&buf, output{format: formatJSON}, testNow, blobs); err != nil {
		t.Fatal(err)
	}
	var got []client.BlobInfo
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not a JSON array of blobs: %v\n%s", err, buf.String())
	}
	if diff := cmp.Diff(blobs, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	var raw []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if size := raw[0]["size"]; size != float64(1572864) {
		t.Errorf("size in JSON is %v, want raw bytes", size)
	}
}

func TestPruneSummary(t *testing.T) {
	for _, tc := range []struct {
		stats client.GCStats
		want  string
	}{
		{client.GCStats{BlobsRemoved: 3, BytesFreed: 1258291, LeasesExpired: 1}, "Removed 3 blobs (1.2 MiB), 1 expired lease, 0 stale ingests"},
		{client.GCStats{BlobsRemoved: 1, BytesFreed: 12, LeasesExpired: 2, IngestsRemoved: 1}, "Removed 1 blob (12 B), 2 expired leases, 1 stale ingest"},
		{client.GCStats{}, "Removed 0 blobs (0 B), 0 expired leases, 0 stale ingests"},
	} {
		if got := pruneSummary(tc.stats); got != tc.want {
			t.Errorf("pruneSummary(%+v) = %q, want %q", tc.stats, got, tc.want)
		}
	}
}

func TestFormatEvent(t *testing.T) {
	ts := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	ev := client.Event{Timestamp: ts, Namespace: "default", Topic: "/content/delete", Type: "berth.services.events.v1.ContentDelete",
		Payload: json.RawMessage("{\"digest\":  \"sha256:aaaa\"\n}")}
	for _, tc := range []struct {
		name   string
		ev     client.Event
		asJSON bool
		want   string
	}{
		{"line", ev, false, `2026-03-01T12:00:00.123456789Z default /content/delete {"digest":"sha256:aaaa"}` + "\n"},
		{"no namespace", client.Event{Timestamp: ts, Topic: "/gc/collect", Payload: json.RawMessage(`{}`)}, false, "2026-03-01T12:00:00.123456789Z - /gc/collect {}\n"},
		{"json", ev, true, `{"timestamp":"2026-03-01T12:00:00.123456789Z","namespace":"default","topic":"/content/delete","type":"berth.services.events.v1.ContentDelete","payload":{"digest":"sha256:aaaa"}}` + "\n"},
	} {
		got, err := formatEvent(tc.ev, tc.asJSON)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := cmp.Diff(tc.want, string(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestNamespaceFilters(t *testing.T) {
	for _, tc := range []struct {
		filters, want []string
	}{
		{nil, []string{"namespace==default"}},
		{[]string{"topic~=^/content/"}, []string{"topic~=^/content/,namespace==default"}},
		{[]string{"topic==/a", "type==x,topic==/b"}, []string{"topic==/a,namespace==default", "type==x,topic==/b,namespace==default"}},
	} {
		if diff := cmp.Diff(tc.want, namespaceFilters(tc.filters, "default")); diff != "" {
			t.Errorf("namespaceFilters(%q) (-want +got):\n%s", tc.filters, diff)
		}
	}
}

func TestPrintInfo(t *testing.T) {
	var buf bytes.Buffer
	info := client.ServerInfo{Version: "v0.1.0", Revision: "abc123", GoVersion: "go1.26.8", PID: 42, Root: "/var/lib/berth",
		State: "/run/berth", Address: "/run/berth/berth.sock", StartedAt: testNow.Add(-3 * time.Second),
		Services: []string{"a", "b"}, Namespaces: 2}
	if err := printInfo(&buf, testNow, info); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Version: v0.1.0\n", "PID: 42\n", "Metrics: off\n", "(3 seconds ago)\n", "Namespaces: 2\n", "Services: a, b\n", "Features: none\n"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("info output lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestPrintVersion(t *testing.T) {
	r := versionReport{Client: versionInfo{"v1", "r1"}, Server: &versionInfo{"v2", "r2"}}
	var buf bytes.Buffer
	if err := printVersion(&buf, output{format: formatTable}, r); err != nil {
		t.Fatal(err)
	}
	if want := "Client: v1 (r1)\nServer: v2 (r2)\n"; buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
	buf.Reset()
	if err := printVersion(&buf, output{format: formatJSON}, r); err != nil {
		t.Fatal(err)
	}
	var got map[string]versionInfo
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]versionInfo{"client": {"v1", "r1"}, "server": {"v2", "r2"}}, got); diff != "" {
		t.Errorf("json (-want +got):\n%s", diff)
	}
}

func TestProgressLine(t *testing.T) {
	for _, tc := range []struct {
		offset, total, sent int64
		elapsed             time.Duration
		want                string
	}{
		{0, 10 << 20, 0, 0, "0 B / 10 MiB"},
		{3 << 20, 10 << 20, 3 << 20, 2 * time.Second, "3 MiB / 10 MiB  1.5 MiB/s"},
		{5 << 20, 0, 1 << 20, time.Second, "5 MiB  1 MiB/s"},
	} {
		if got := progressLine(tc.offset, tc.total, tc.sent, tc.elapsed); got != tc.want {
			t.Errorf("progressLine(%d, %d, %d, %v) = %q, want %q", tc.offset, tc.total, tc.sent, tc.elapsed, got, tc.want)
		}
	}
}

func TestIngestInputFileIsSeekable(t *testing.T) {
	name := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(name, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := openInput(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer in.close()
	if _, ok := in.r.(*os.File); !ok {
		t.Errorf("input is a %T, want the *os.File so the client can resume", in.r)
	}
	if in.size != 6 {
		t.Errorf("size %d, want 6", in.size)
	}
}

func TestIngestInputStreamIsNotSeekable(t *testing.T) {
	in, err := openInput("-", strings.NewReader("hello\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.close()
	if _, ok := in.r.(io.Seeker); ok {
		t.Error("a stream must not look seekable")
	}
	if b, err := io.ReadAll(in.r); err != nil || string(b) != "hello\n" {
		t.Errorf("stream read %q, %v", b, err)
	}
}
