package network

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/go-cmp/cmp"
)

func TestParsePortMapping(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    PortMapping
		wantErr string // substring of the error; "" for success
	}{
		{in: "8080:80", want: PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		{in: "8080:80/tcp", want: PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		{in: "53:53/udp", want: PortMapping{HostPort: 53, ContainerPort: 53, Protocol: "udp"}},
		{in: "53:53/UDP", want: PortMapping{HostPort: 53, ContainerPort: 53, Protocol: "udp"}},
		{in: "127.0.0.1:8080:80", want: PortMapping{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		{in: "0.0.0.0:8080:80/udp", want: PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "udp"}},
		{in: "192.168.1.2:65535:1", want: PortMapping{HostIP: "192.168.1.2", HostPort: 65535, ContainerPort: 1, Protocol: "tcp"}},
		{in: "80", wantErr: "need a host port and a container port"},
		{in: "", wantErr: "need a host port and a container port"},
		{in: "8080:80/sctp", wantErr: `protocol "sctp" is not tcp or udp`},
		{in: "8080:80/", wantErr: `protocol "" is not tcp or udp`},
		{in: "0:80", wantErr: `host port: "0" is not a number from 1 to 65535`},
		{in: "8080:65536", wantErr: `container port: "65536" is not a number from 1 to 65535`},
		{in: "http:80", wantErr: `host port: "http"`},
		{in: "8080-8081:80", wantErr: `host port: "8080-8081"`},
		{in: "localhost:8080:80", wantErr: `host IP "localhost" is not an IP address`},
		{in: "[::1]:8080:80", wantErr: "IPv6 host IPs are not supported"},
		{in: "::1:8080:80", wantErr: "IPv6 host IPs are not supported"},
		{in: "::ffff:127.0.0.1:8080:80", wantErr: "IPv6 host IPs are not supported"},
	} {
		got, err := ParsePortMapping(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("ParsePortMapping(%q) = %v, %v; want an ErrInvalidArgument containing %q", tc.in, got, err, tc.wantErr)
			} else if !strings.Contains(err.Error(), "[hostip:]hostport:containerport[/tcp|udp]") {
				t.Errorf("ParsePortMapping(%q): error %q does not show the expected form", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePortMapping(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParsePortMapping(%q) (-want +got):\n%s", tc.in, diff)
		}
		// String gives back an equivalent form.
		if again, err := ParsePortMapping(got.String()); err != nil || again != got {
			t.Errorf("ParsePortMapping(%q.String() = %q) = %v, %v", tc.in, got.String(), again, err)
		}
	}
}

func TestPortMappingConflicts(t *testing.T) {
	p := func(ip string, port uint16, proto string) PortMapping {
		return PortMapping{HostIP: ip, HostPort: port, ContainerPort: 80, Protocol: proto}
	}
	for _, tc := range []struct {
		a, b PortMapping
		want bool
	}{
		{p("", 80, "tcp"), p("", 80, "tcp"), true},
		{p("", 80, "tcp"), p("127.0.0.1", 80, "tcp"), true},
		{p("127.0.0.1", 80, "tcp"), p("127.0.0.1", 80, "tcp"), true},
		{p("127.0.0.1", 80, "tcp"), p("127.0.0.2", 80, "tcp"), false},
		{p("", 80, "tcp"), p("", 80, "udp"), false},
		{p("", 80, "tcp"), p("", 81, "tcp"), false},
	} {
		if got := tc.a.conflicts(tc.b); got != tc.want {
			t.Errorf("%s conflicts with %s = %t, want %t", tc.a, tc.b, got, tc.want)
		}
		if got := tc.b.conflicts(tc.a); got != tc.want {
			t.Errorf("%s conflicts with %s = %t, want %t", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestPortMappingsRoundTripThroughCache(t *testing.T) {
	in := []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, {HostIP: "127.0.0.1", HostPort: 53, ContainerPort: 5353, Protocol: "udp"}}
	b, err := json.Marshal(map[string]any{"portMappings": toCNIPortMappings(in)})
	if err != nil {
		t.Fatal(err)
	}
	var cached map[string]any // as libcni reads its cache back
	if err := json.Unmarshal(b, &cached); err != nil {
		t.Fatal(err)
	}
	if want := `{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},{"hostPort":53,"containerPort":5353,"protocol":"udp","hostIP":"127.0.0.1"}]}`; string(b) != want {
		t.Errorf("capability argument %s, want portmap's form %s", b, want)
	}
	out, err := portMappingsFromCapability(cached["portMappings"])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if out, err := portMappingsFromCapability(nil); err != nil || out != nil {
		t.Errorf("no capability: %v, %v", out, err)
	}
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"bridge", "none", "host"} {
		if m, err := ParseMode(s); err != nil || string(m) != s {
			t.Errorf("ParseMode(%q) = %q, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "Bridge", "container:abc"} {
		if _, err := ParseMode(s); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "must be bridge, none or host") {
			t.Errorf("ParseMode(%q): %v, want ErrInvalidArgument", s, err)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	got, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := Config{PluginDirs: []string{"/usr/lib/cni", "/opt/cni/bin"}, StateDir: "/run/berth/net", BridgeName: "berth0", Subnet: "10.87.0.0/16"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	set := Config{PluginDirs: []string{"/p"}, StateDir: "/s", BridgeName: "br", Subnet: "192.168.7.0/24"}
	if got, err := set.withDefaults(); err != nil || !cmp.Equal(got, set) {
		t.Errorf("set fields changed: %+v, %v", got, err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		cfg     Config
		wantErr string
	}{
		{Config{StateDir: "run/net"}, "must be absolute"},
		{Config{BridgeName: "a-very-long-bridge"}, "longer than 15 bytes"},
		{Config{BridgeName: "br/0"}, "contains '/'"},
		{Config{Subnet: "10.88.0.0"}, `subnet "10.88.0.0"`},
		{Config{Subnet: "fd00::/64"}, "must be IPv4"},
		{Config{Subnet: "10.88.0.1/16"}, "did you mean 10.88.0.0/16?"},
		{Config{Subnet: "10.88.0.0/31"}, "too small"},
	} {
		_, err := tc.cfg.withDefaults()
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v: %v, want ErrInvalidArgument containing %q", tc.cfg, err, tc.wantErr)
		}
	}
}

func TestBridgeConfList(t *testing.T) {
	cfg := Config{BridgeName: "br7", Subnet: "10.7.0.0/24"}
	bridge := `{"type": "bridge", "bridge": "br7", "isGateway": true, "isDefaultGateway": true, "hairpinMode": true,
		"ipam": {"type": "host-local", "ranges": [[{"subnet": "10.7.0.0/24"}]], "dataDir": "/state/ipam"}}`
	for _, tc := range []struct {
		withPorts bool
		plugins   string
	}{
		{true, bridge + `, {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}`},
		{false, bridge},
	} {
		var got, want any
		if err := json.Unmarshal(bridgeConfList(cfg, "/state/ipam", tc.withPorts), &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(`{"cniVersion": "1.0.0", "name": "berth", "plugins": [`+tc.plugins+`]}`), &want); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("bridge network config with ports %v (-want +got):\n%s", tc.withPorts, diff)
		}
		list, err := parseNetwork(bridgeConfList(cfg, "/state/ipam", tc.withPorts))
		if err != nil {
			t.Fatalf("libcni rejects the config: %v", err)
		}
		if list.Name() != BridgeNetworkName {
			t.Errorf("network name %q, want %q", list.Name(), BridgeNetworkName)
		}
	}
}

func TestBridgeRules(t *testing.T) {
	got := bridgeRules(Config{BridgeName: "br7", Subnet: "10.7.0.0/24"})
	want := []iptablesRule{
		{"nat", "POSTROUTING", []string{"-s", "10.7.0.0/24", "!", "-o", "br7", "-m", "comment", "--comment", "berth bridge br7: masquerade", "-j", "MASQUERADE"}},
		{"filter", "FORWARD", []string{"-o", "br7", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-m", "comment", "--comment", "berth bridge br7: replies and published ports", "-j", "ACCEPT"}},
		{"filter", "FORWARD", []string{"-i", "br7", "-m", "comment", "--comment", "berth bridge br7: from containers", "-j", "ACCEPT"}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(iptablesRule{})); diff != "" {
		t.Errorf("bridge rules (-want +got):\n%s", diff)
	}
}

func TestLoadNetwork(t *testing.T) {
	const conflist = `{"cniVersion":"1.0.0","name":"first","plugins":[{"type":"bridge"}]}`
	const conf = `{"cniVersion":"1.0.0","name":"single","type":"bridge"}`
	for _, tc := range []struct {
		name    string
		files   map[string]string
		want    string
		wantErr error
	}{
		{"conflist", map[string]string{"10-a.conflist": conflist, "20-b.conf": conf}, "first", nil},
		{"first by name", map[string]string{"05-b.conf": conf, "10-a.conflist": conflist}, "single", nil},
		{"ignores other files", map[string]string{"README": "x", "99-a.json": conf}, "single", nil},
		{"empty", map[string]string{"README": "x"}, "", errdefs.ErrNotFound},
		{"broken", map[string]string{"10-a.conflist": "{"}, "", errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			n, err := LoadNetwork(dir)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("LoadNetwork: %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.Name() != tc.want {
				t.Errorf("network %q, want %q", n.Name(), tc.want)
			}
		})
	}
}
