package logs

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func line(sec int, stream, tag, text string) string {
	return time.Date(2026, 1, 1, 0, 0, sec, 5, time.UTC).Format(time.RFC3339Nano) + " " + stream + " " + tag + " " + text + "\n"
}

func collect(t *testing.T, path string, opts Options) []string {
	t.Helper()
	var out []string
	err := Read(context.Background(), path, opts, func(e Entry) error {
		out = append(out, e.Stream+":"+string(e.Data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Entry
		wantErr bool
	}{
		{in: "2016-10-06T00:17:09.669794202Z stdout F hello world", want: Entry{Time: time.Date(2016, 10, 6, 0, 17, 9, 669794202, time.UTC), Stream: "stdout", Data: []byte("hello world\n")}},
		{in: "2016-10-06T00:17:09Z stderr P part", want: Entry{Time: time.Date(2016, 10, 6, 0, 17, 9, 0, time.UTC), Stream: "stderr", Partial: true, Data: []byte("part")}},
		{in: "2016-10-06T00:17:09Z stdout F ", want: Entry{Time: time.Date(2016, 10, 6, 0, 17, 9, 0, time.UTC), Stream: "stdout", Data: []byte("\n")}},
		{in: "garbage", wantErr: true},
		{in: "notatime stdout F x", wantErr: true},
		{in: "2016-10-06T00:17:09Z stdout X x", wantErr: true},
	} {
		got, err := ParseLine([]byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); !tc.wantErr && diff != "" {
			t.Errorf("%q: %s", tc.in, diff)
		}
	}
}

func TestReadAcrossRotationWithTailAndSince(t *testing.T) {
	path := t.TempDir() + "/c.log"
	os.WriteFile(path+".2", []byte(line(1, "stdout", "F", "one")+line(2, "stderr", "F", "two")), 0o600)
	os.WriteFile(path+".1", []byte(line(3, "stdout", "P", "thr")+line(3, "stdout", "F", "ee")), 0o600)
	os.WriteFile(path, []byte(line(4, "stdout", "F", "four")+"torn line without format\n"+line(5, "stdout", "F", "fi")), 0o600)
	all := collect(t, path, Options{Tail: -1})
	want := []string{"stdout:one\n", "stderr:two\n", "stdout:thr", "stdout:ee\n", "stdout:four\n", "stdout:fi\n"}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Fatalf("all: %s", diff)
	}
	if diff := cmp.Diff(want[2:], collect(t, path, Options{Tail: 3})); diff != "" {
		t.Errorf("tail 3 keeps the partial with its line: %s", diff)
	}
	since := time.Date(2026, 1, 1, 0, 0, 4, 0, time.UTC)
	if diff := cmp.Diff(want[4:], collect(t, path, Options{Tail: -1, Since: since})); diff != "" {
		t.Errorf("since: %s", diff)
	}
	if got := collect(t, t.TempDir()+"/missing.log", Options{Tail: -1}); len(got) != 0 {
		t.Errorf("missing log: %v", got)
	}
}

func TestFollowSeesAppendsAndRotationUntilDone(t *testing.T) {
	path := t.TempDir() + "/c.log"
	os.WriteFile(path, []byte(line(1, "stdout", "F", "a")), 0o600)
	done := make(chan struct{})
	got := make(chan string, 10)
	errc := make(chan error, 1)
	go func() {
		errc <- Read(context.Background(), path, Options{Tail: -1, Follow: true, Done: done, PollInterval: 5 * time.Millisecond}, func(e Entry) error {
			got <- string(e.Data)
			return nil
		})
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case s := <-got:
			if s != want {
				t.Fatalf("got %q, want %q", s, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %q", want)
		}
	}
	expect("a\n")
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(line(2, "stdout", "F", "b")[:20]) // half a line is not emitted
	time.Sleep(20 * time.Millisecond)
	f.WriteString(line(2, "stdout", "F", "b")[20:])
	f.WriteString(line(3, "stdout", "F", "c"))
	f.Close()
	expect("b\n")
	expect("c\n")
	os.Rename(path, path+".1")
	os.WriteFile(path, []byte(line(4, "stdout", "F", "d")), 0o600)
	expect("d\n")
	f, _ = os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(line(5, "stdout", "F", "last"))
	f.Close()
	close(done)
	expect("last\n")
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("%d extra entries", len(got))
	}
}
