package shim

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testLog opens a log whose clock ticks one microsecond per entry from a
// fixed instant.
func testLog(t *testing.T, maxSize int64, maxFiles int) *logFile {
	t.Helper()
	l, err := openLogFile(filepath.Join(t.TempDir(), "sub", "c.log"), maxSize, maxFiles, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.close() })
	now := time.Date(2016, 10, 6, 0, 17, 9, 669794202, time.FixedZone("CEST", 2*3600))
	l.now = func() time.Time {
		now = now.Add(time.Microsecond)
		return now
	}
	return l
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLogEntries(t *testing.T) {
	long := strings.Repeat("x", maxLogLine)
	for _, tc := range []struct {
		name   string
		writes []struct {
			stream int
			data   string
		}
		want string
	}{
		{
			name: "lines",
			writes: []struct {
				stream int
				data   string
			}{{streamStdout, "a\nb\n"}, {streamStderr, "e\n"}},
			want: "2016-10-05T22:17:09.669795202Z stdout F a\n" +
				"2016-10-05T22:17:09.669796202Z stdout F b\n" +
				"2016-10-05T22:17:09.669797202Z stderr F e\n",
		},
		{
			name: "line across writes, streams interleaved",
			writes: []struct {
				stream int
				data   string
			}{{streamStdout, "hel"}, {streamStderr, "x"}, {streamStdout, "lo\n"}, {streamStderr, "y\n"}},
			want: "2016-10-05T22:17:09.669795202Z stdout F hello\n" +
				"2016-10-05T22:17:09.669796202Z stderr F xy\n",
		},
		{
			name: "empty line and spaces kept",
			writes: []struct {
				stream int
				data   string
			}{{streamStdout, "\n  two  \r\n"}},
			want: "2016-10-05T22:17:09.669795202Z stdout F \n" +
				"2016-10-05T22:17:09.669796202Z stdout F   two  \r\n",
		},
		{
			name: "long line split",
			writes: []struct {
				stream int
				data   string
			}{{streamStdout, long + "tail\n"}},
			want: "2016-10-05T22:17:09.669795202Z stdout P " + long + "\n" +
				"2016-10-05T22:17:09.669796202Z stdout F tail\n",
		},
		{
			name: "long line split across writes",
			writes: []struct {
				stream int
				data   string
			}{{streamStdout, "ab"}, {streamStdout, long}, {streamStdout, "\n"}},
			want: "2016-10-05T22:17:09.669795202Z stdout P ab" + long[2:] + "\n" +
				"2016-10-05T22:17:09.669796202Z stdout F xx\n",
		},
		{
			name: "exactly max then newline",
			writes: []struct {
				stream int
				data   string
			}{{streamStdout, long + "\n"}},
			want: "2016-10-05T22:17:09.669795202Z stdout P " + long + "\n" +
				"2016-10-05T22:17:09.669796202Z stdout F \n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := testLog(t, 0, 1)
			for _, w := range tc.writes {
				l.write(w.stream, []byte(w.data))
			}
			if diff := cmp.Diff(tc.want, readFile(t, l.path)); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLogFlushWritesOpenLine(t *testing.T) {
	l := testLog(t, 0, 1)
	l.write(streamStdout, []byte("done\nprompt$ "))
	l.write(streamStderr, []byte("err"))
	l.flush(streamStdout)
	l.flush(streamStdout) // nothing left
	want := "2016-10-05T22:17:09.669795202Z stdout F done\n" +
		"2016-10-05T22:17:09.669796202Z stdout F prompt$ \n"
	if diff := cmp.Diff(want, readFile(t, l.path)); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	l.flush(streamStderr)
	if got := readFile(t, l.path); !strings.HasSuffix(got, " stderr F err\n") {
		t.Errorf("stderr not flushed: %q", got)
	}
}

func TestLogRotation(t *testing.T) {
	const entry = len("2016-10-05T22:17:09.669795202Z stdout F 000\n") // 44 bytes
	for _, tc := range []struct {
		name     string
		maxFiles int
		lines    int
		want     []string // entries per file: FILE, FILE.1, ...
	}{
		{"no rotation needed", 3, 2, []string{"000 001"}},
		{"three files", 3, 7, []string{"006", "003 004 005", "000 001 002"}},
		{"oldest dropped", 3, 10, []string{"009", "006 007 008", "003 004 005"}},
		{"one file truncates", 1, 7, []string{"006"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := testLog(t, 3*int64(entry), tc.maxFiles) // three entries per file
			for i := range tc.lines {
				l.write(streamStdout, fmt.Appendf(nil, "%03d\n", i))
			}
			for i, want := range tc.want {
				path := l.path
				if i > 0 {
					path += fmt.Sprint(".", i)
				}
				var got []string
				for line := range strings.SplitSeq(strings.TrimSpace(readFile(t, path)), "\n") {
					got = append(got, line[len(line)-3:])
				}
				if strings.Join(got, " ") != want {
					t.Errorf("%s holds %v, want %s", filepath.Base(path), got, want)
				}
			}
			if _, err := os.Stat(fmt.Sprint(l.path, ".", len(tc.want))); !os.IsNotExist(err) {
				t.Errorf("file %d exists: %v", len(tc.want), err)
			}
		})
	}
}

func TestLogReopenFollowsRename(t *testing.T) {
	l := testLog(t, 0, 1)
	l.write(streamStdout, []byte("before\n"))
	if err := os.Rename(l.path, l.path+".old"); err != nil {
		t.Fatal(err)
	}
	l.write(streamStdout, []byte("still old\n"))
	if err := l.reopen(); err != nil {
		t.Fatal(err)
	}
	l.write(streamStdout, []byte("after\n"))
	if got := readFile(t, l.path+".old"); !strings.HasSuffix(got, "F still old\n") {
		t.Errorf("renamed file %q", got)
	}
	if got := readFile(t, l.path); !strings.HasSuffix(got, "F after\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("reopened file %q", got)
	}
}
