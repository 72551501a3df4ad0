package main

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/google/go-cmp/cmp"
)

func TestCPUTimeAndUserColumns(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "00:00:00"},
		{999 * time.Millisecond, "00:00:00"},
		{65 * time.Second, "00:01:05"},
		{25*time.Hour + 2*time.Minute, "1-01:02:00"},
	} {
		if got := cpuTime(tc.d); got != tc.want {
			t.Errorf("cpuTime(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if got := userName(0); got != "root" {
		t.Errorf("userName(0) = %q", got)
	}
	if got := userName(4000000); got != "4000000" {
		t.Errorf("userName(4000000) = %q", got)
	}
}

func TestPortLines(t *testing.T) {
	got := portLines([]client.PortMapping{
		{HostIP: "127.0.0.1", HostPort: 18080, ContainerPort: 8080, Protocol: "tcp"},
		{HostPort: 5353, ContainerPort: 53, Protocol: "udp"},
	})
	want := []string{"8080/tcp -> 127.0.0.1:18080", "53/udp -> 0.0.0.0:5353"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		in    string
		port  uint16
		proto string
	}{{"80", 80, "tcp"}, {"53/udp", 53, "udp"}} {
		port, proto, err := parsePortFilter(tc.in)
		if err != nil || port != tc.port || proto != tc.proto {
			t.Errorf("parsePortFilter(%q) = %d %q %v", tc.in, port, proto, err)
		}
	}
}
