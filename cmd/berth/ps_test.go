package main

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
)

func TestContainerStatus(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	startedAt := func(d time.Duration) func(uint32) (time.Time, bool) {
		return func(pid uint32) (time.Time, bool) { return now.Add(-d), pid != 0 }
	}
	for _, tc := range []struct {
		name    string
		ct      client.Container
		started func(uint32) (time.Time, bool)
		want    string
	}{
		{"never ran", client.Container{}, nil, "Created"},
		{"task created", client.Container{Status: client.StatusCreated}, nil, "Created"},
		{"running", client.Container{Status: client.StatusRunning, PID: 7}, startedAt(3 * time.Second), "Up 3 seconds"},
		{"just started", client.Container{Status: client.StatusRunning, PID: 7}, startedAt(300 * time.Millisecond), "Up Less than a second"},
		{"start unknown", client.Container{Status: client.StatusRunning}, startedAt(time.Hour), "Up"},
		{"paused", client.Container{Status: client.StatusPaused, PID: 7}, startedAt(90 * time.Second), "Up 1 minute (Paused)"},
		{"stopped", client.Container{Status: client.StatusStopped, ExitStatus: 3, ExitedAt: now.Add(-5 * time.Second)}, nil, "Exited (3) 5 seconds ago"},
		{"task deleted after exit", client.Container{ExitedAt: now.Add(-2 * time.Hour)}, nil, "Exited (0) 2 hours ago"},
		{"oom", client.Container{Status: client.StatusStopped, ExitStatus: 137, ExitedAt: now.Add(-time.Minute), ExitReason: "OOMKilled"}, nil, "Exited (137) 1 minute ago (OOMKilled)"},
	} {
		if got := containerStatus(tc.ct, now, tc.started); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestStartTimeFromProc(t *testing.T) {
	// Field 22 of /proc/PID/stat is 250 ticks (2.5 s) after boot; the
	// command holds a space and a parenthesis.
	stat := "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 250 1000 10 18446744073709551615"
	proc := "cpu  1 2 3\nbtime 1714557600\nprocesses 9\n"
	got, ok := startTime(stat, proc)
	if want := time.Unix(1714557600, 0).Add(2500 * time.Millisecond); !ok || !got.Equal(want) {
		t.Errorf("startTime = %v, %v; want %v", got, ok, want)
	}
	for _, bad := range [][2]string{{"4242 no parens", proc}, {stat, "no btime\n"}, {"1 (x) S 1", proc}} {
		if _, ok := startTime(bad[0], bad[1]); ok {
			t.Errorf("startTime(%q, %q) succeeded", bad[0], bad[1])
		}
	}
	if _, ok := processStart(0); ok {
		t.Error("processStart(0) succeeded")
	}
}

func TestPortsAndCommandColumns(t *testing.T) {
	ports := []client.PortMapping{
		{HostIP: "127.0.0.1", HostPort: 18080, ContainerPort: 8080, Protocol: "tcp"},
		{HostPort: 53, ContainerPort: 53, Protocol: "udp"},
		{HostIP: "::1", HostPort: 9000, ContainerPort: 90},
	}
	if got, want := portsColumn(ports), "127.0.0.1:18080->8080/tcp, 0.0.0.0:53->53/udp, [::1]:9000->90/tcp"; got != want {
		t.Errorf("ports column %q, want %q", got, want)
	}
	ct := client.Container{Spec: []byte(`{"process":{"args":["sh","-c","exit 3"]}}`), Config: client.ContainerConfig{Args: []string{"ignored"}}}
	if got := commandLine(ct); got != "sh -c exit 3" {
		t.Errorf("command from spec %q", got)
	}
	ct = client.Container{Config: client.ContainerConfig{Entrypoint: []string{"/init"}, Args: []string{"serve"}}}
	if got := commandLine(ct); got != "/init serve" {
		t.Errorf("command from config %q", got)
	}
	if got := truncate(`"sh -c 'while true; do sleep 1; done'"`, 20); got != `"sh -c 'while true;…` {
		t.Errorf("truncate %q", got)
	}
	if got := shortID("0123456789abcdef"); got != "0123456789ab" {
		t.Errorf("shortID %q", got)
	}
}
