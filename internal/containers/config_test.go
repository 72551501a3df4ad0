package containers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestRestartPolicies(t *testing.T) {
	for _, tc := range []struct {
		in       string
		status   int32
		restarts uint32
		stopped  bool
		want     bool
		wantErr  bool
	}{
		{in: "", status: 1, want: false},
		{in: "no", status: 1, want: false},
		{in: "always", status: 0, want: true},
		{in: "always", status: 0, stopped: true, want: false},
		{in: "unless-stopped", status: 0, want: true},
		{in: "on-failure", status: 0, want: false},
		{in: "on-failure", status: 2, restarts: 100, want: true},
		{in: "on-failure:2", status: 2, restarts: 1, want: true},
		{in: "on-failure:2", status: 2, restarts: 2, want: false},
		{in: "on-failure:x", wantErr: true},
		{in: "on-failure:-1", wantErr: true},
		{in: "always:3", wantErr: true},
		{in: "sometimes", wantErr: true},
	} {
		p, err := ParseRestartPolicy(tc.in)
		if tc.wantErr {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%q: err %v, want invalid argument", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := p.ShouldRestart(tc.status, tc.restarts, tc.stopped); got != tc.want {
			t.Errorf("%q status %d restarts %d stopped %v: restart %v, want %v", tc.in, tc.status, tc.restarts, tc.stopped, got, tc.want)
		}
	}
}

func TestRestartDelayGrowsToAMinute(t *testing.T) {
	if d := restartDelay(0); d != 100*time.Millisecond {
		t.Errorf("first delay %v", d)
	}
	if d := restartDelay(3); d != 800*time.Millisecond {
		t.Errorf("fourth delay %v", d)
	}
	if d := restartDelay(1000); d != time.Minute {
		t.Errorf("cap %v", d)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", Config{Image: "busybox"}, ""},
		{"no image", Config{}, "no image"},
		{"bad network", Config{Image: "b", Network: "overlay"}, "want bridge, host or none"},
		{"ports on host", Config{Image: "b", Network: "host", Ports: []PortMapping{{ContainerPort: 80}}}, "need --net bridge"},
		{"bad protocol", Config{Image: "b", Ports: []PortMapping{{ContainerPort: 80, Protocol: "sctp"}}}, "want tcp or udp"},
		{"rm with restart", Config{Image: "b", AutoRemove: true, Restart: "always"}, "conflict"},
		{"bad restart", Config{Image: "b", Restart: "maybe"}, "restart policy"},
	} {
		err := tc.cfg.validate()
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.wantErr)
		}
	}
	c := Config{Image: "b", Ports: []PortMapping{{ContainerPort: 80}}}
	if err := c.validate(); err != nil || c.Network != NetworkBridge || c.Ports[0].HostPort != 80 || c.Ports[0].Protocol != "tcp" {
		t.Errorf("defaults not filled in: %+v, %v", c, err)
	}
}

func TestEtcFilesDropLoopbackNameservers(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "host-resolv.conf")
	os.WriteFile(host, []byte("nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.org\n"), 0o644)
	f, err := writeEtcFiles(dir, "box", NetworkBridge, host)
	if err != nil {
		t.Fatal(err)
	}
	resolv, _ := os.ReadFile(f.resolvConf)
	if string(resolv) != "nameserver 10.0.0.2\nsearch example.org\n" {
		t.Errorf("resolv.conf = %q", resolv)
	}
	hosts, _ := os.ReadFile(f.hosts)
	if !strings.Contains(string(hosts), "127.0.1.1\tbox\n") {
		t.Errorf("hosts = %q", hosts)
	}
	f, err = writeEtcFiles(dir, "box", NetworkHost, host)
	if err != nil {
		t.Fatal(err)
	}
	resolv, _ = os.ReadFile(f.resolvConf)
	if !strings.Contains(string(resolv), "127.0.0.53") {
		t.Errorf("host network keeps the host's resolv.conf: %q", resolv)
	}
}

func TestOCIOptionsFromConfig(t *testing.T) {
	s := &Service{}
	cfg := Config{Image: "b", Mounts: []Mount{
		{Type: "bind", Source: "/a", Destination: "/x", Options: []string{"ro"}},
		{Type: "bind", Source: "/b", Destination: "/y", Options: []string{"rw"}},
		{Type: "tmpfs", Destination: "/t", Options: []string{"size=1m"}},
	}}
	o := s.ociOptions(ocispec.ImageConfig{StopSignal: "SIGQUIT"}, "ns", "id1", "h", cfg, nil, etcFiles{hosts: "/h", hostname: "/hn", resolvConf: "/r"})
	if o.CgroupsPath != "/berth/ns/id1" || o.Annotations[AnnotationStopSignal] != "SIGQUIT" {
		t.Errorf("cgroups path %q, annotations %v", o.CgroupsPath, o.Annotations)
	}
	if !o.Mounts[0].ReadOnly || len(o.Mounts[0].Options) != 0 || o.Mounts[1].ReadOnly || o.Mounts[2].Options[0] != "size=1m" {
		t.Errorf("mounts: %+v", o.Mounts)
	}
	if len(o.Mounts) != 6 || o.Mounts[3].Destination != "/etc/hosts" || o.Mounts[5].Source != "/r" {
		t.Errorf("etc files not bind-mounted: %+v", o.Mounts[3:])
	}
}

func TestUsersCacheKeepsTheNewest(t *testing.T) {
	var c usersCache
	for i := range usersCacheSize + 1 {
		c.add(fmt.Sprint(i), &oci.ImageUsers{Passwd: []byte(fmt.Sprint(i))})
	}
	if _, ok := c.get("0"); ok {
		t.Error("the oldest entry was kept past the bound")
	}
	for _, k := range []string{"1", fmt.Sprint(usersCacheSize)} {
		if u, ok := c.get(k); !ok || string(u.Passwd) != k {
			t.Errorf("entry %s: %+v, %v", k, u, ok)
		}
	}
	c.add("1", &oci.ImageUsers{Passwd: []byte("other")})
	if u, _ := c.get("1"); string(u.Passwd) != "1" || len(c.order) != usersCacheSize {
		t.Errorf("re-adding changed the cache: %q, %d entries", u.Passwd, len(c.order))
	}
}
