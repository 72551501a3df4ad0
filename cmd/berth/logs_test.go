package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
)

func TestLogEntriesGoToTheirStream(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 0, 0, 1500, time.FixedZone("CEST", 2*3600))
	var stdout, stderr bytes.Buffer
	for _, e := range []client.LogEntry{
		{Time: at, Stream: "stdout", Data: []byte("out 1\n")},
		{Time: at, Stream: "stderr", Data: []byte("err 1\n")},
		{Time: at, Stream: "stdout", Data: []byte("partial")},
	} {
		if err := writeLogEntry(&stdout, &stderr, e, false); err != nil {
			t.Fatal(err)
		}
	}
	if stdout.String() != "out 1\npartial" || stderr.String() != "err 1\n" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	got := string(formatLogLine(client.LogEntry{Time: at, Stream: "stdout", Data: []byte("hello\n")}, true))
	if want := "2024-05-01T08:00:00.000001500Z hello\n"; got != want {
		t.Errorf("with timestamps: %q, want %q", got, want)
	}
}

func TestParseTimeArg(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"10m", now.Add(-10 * time.Minute)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"0s", now},
		{"2024-05-01T10:00:00Z", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		{"2024-05-01T10:00:00.5+02:00", time.Date(2024, 5, 1, 8, 0, 0, 5e8, time.UTC)},
		{"2024-05-01T10:00:00", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		{"2024-05-01", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
		{"1714557600", time.Unix(1714557600, 0)},
		{"1714557600.25", time.Unix(1714557600, 25e7)},
	} {
		got, err := parseTimeArg(tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseTimeArg(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "yesterday", "-5m", "2024-13-01", "12.x"} {
		if got, err := parseTimeArg(in, now); err == nil {
			t.Errorf("parseTimeArg(%q) = %v, want an error", in, got)
		}
	}
}

func TestTailValue(t *testing.T) {
	var v tailValue
	if v.lines != nil || v.String() != "all" {
		t.Errorf("default %q", v.String())
	}
	for _, tc := range []struct {
		in   string
		want string
	}{{"5", "5"}, {"0", "0"}, {"all", "all"}, {"-1", "all"}} {
		if err := v.Set(tc.in); err != nil || v.String() != tc.want {
			t.Errorf("--tail %s: %q, %v; want %q", tc.in, v.String(), err, tc.want)
		}
	}
}
