package main

import (
	"syscall"
	"testing"
)

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
	}{
		{"KILL", syscall.SIGKILL},
		{"SIGTERM", syscall.SIGTERM},
		{"sigusr1", syscall.SIGUSR1},
		{"usr2", syscall.SIGUSR2},
		{"Hup", syscall.SIGHUP},
		{"9", syscall.SIGKILL},
		{"15", syscall.SIGTERM},
		{"64", 64},
		{"RTMIN+3", 37},
		{"SIGRTMIN+0", 34},
	} {
		got, err := parseSignal(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSignal(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "-1", "65", "NOPE", "SIG", "RTMIN+31", "RTMIN+x"} {
		if got, err := parseSignal(bad); err == nil {
			t.Errorf("parseSignal(%q) = %d, want an error", bad, got)
		}
	}
	if got := signalName(syscall.SIGINT); got != "SIGINT" {
		t.Errorf("signalName(SIGINT) = %q", got)
	}
	if got := signalName(40); got != "40" {
		t.Errorf("signalName(40) = %q", got)
	}
}
