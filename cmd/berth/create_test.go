package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/client"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"4096", 4096},
		{"10b", 10},
		{"1k", 1 << 10},
		{"1kb", 1 << 10},
		{"512m", 512 << 20},
		{"512M", 512 << 20},
		{"64MiB", 64 << 20},
		{"64mb", 64 << 20},
		{"1.5g", 3 << 29},
		{"1G", 1 << 30},
		{"2t", 2 << 40},
		{"1p", 1 << 50},
		{"0.5k", 512},
		{"100 m", 100 << 20},
	} {
		got, err := parseBytes(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "m", "-1m", "12x", "1mm", "1e3", "0x10", "NaN", "Inf", "1.2.3g", "+5m", "9999999p"} {
		if n, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) = %d, want an error", in, n)
		}
	}
	var b bytesValue
	if err := b.Set("0"); err == nil || !strings.Contains(err.Error(), "must be positive") {
		t.Errorf("--memory 0: %v, want must be positive", err)
	}
}

func TestParsePublish(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []client.PortMapping
	}{
		{"80", []client.PortMapping{{ContainerPort: 80, Protocol: "tcp"}}},
		{"8080:80", []client.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}},
		{"53:53/udp", []client.PortMapping{{HostPort: 53, ContainerPort: 53, Protocol: "udp"}}},
		{"127.0.0.1:18080:8080", []client.PortMapping{{HostIP: "127.0.0.1", HostPort: 18080, ContainerPort: 8080, Protocol: "tcp"}}},
		{"127.0.0.1::8080", []client.PortMapping{{HostIP: "127.0.0.1", ContainerPort: 8080, Protocol: "tcp"}}},
		{"[::1]:8080:80/tcp", []client.PortMapping{{HostIP: "::1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}},
		{"[0:0::1]::80", []client.PortMapping{{HostIP: "::1", ContainerPort: 80, Protocol: "tcp"}}},
		{"8000-8001:80-81", []client.PortMapping{
			{HostPort: 8000, ContainerPort: 80, Protocol: "tcp"},
			{HostPort: 8001, ContainerPort: 81, Protocol: "tcp"},
		}},
		{"7000-7001/udp", []client.PortMapping{
			{ContainerPort: 7000, Protocol: "udp"},
			{ContainerPort: 7001, Protocol: "udp"},
		}},
	} {
		got, err := parsePublish(tc.in)
		if err != nil {
			t.Errorf("parsePublish(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("parsePublish(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "not a port number"},
		{"0", "not a port number"},
		{"65536", "not a port number"},
		{"http", "not a port number"},
		{"80/sctp", `protocol "sctp"`},
		{"1.2.3.4:5:6:7", "want [[HOST_IP:]HOST_PORT:]CONTAINER_PORT"},
		{"nothost:80:80", `"nothost" is not an IP address`},
		{"[::1]:80", "want [IPV6]:HOST_PORT:CONTAINER_PORT"},
		{"[::1:80:80", "want [IPV6]"},
		{"[::1]:1.2.3.4:80:80", "too many colons"},
		{"8000-8002:80-81", "differ in length"},
		{"90-80", "ends before it starts"},
		{"x:80", `host port: "x" is not a port number`},
	} {
		if got, err := parsePublish(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parsePublish(%q) = %v, %v; want an error containing %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseVolumeAndTmpfs(t *testing.T) {
	for _, tc := range []struct {
		in    string
		tmpfs bool
		want  client.ContainerMount
	}{
		{"/data:/data", false, client.ContainerMount{Type: "bind", Source: "/data", Destination: "/data"}},
		{"/srv/x/:/mnt//y:ro", false, client.ContainerMount{Type: "bind", Source: "/srv/x", Destination: "/mnt/y", Options: []string{"ro"}}},
		{"/a:/b:rw", false, client.ContainerMount{Type: "bind", Source: "/a", Destination: "/b", Options: []string{"rw"}}},
		{"/run", true, client.ContainerMount{Type: "tmpfs", Destination: "/run"}},
		{"/tmp:size=64m,mode=1777", true, client.ContainerMount{Type: "tmpfs", Destination: "/tmp", Options: []string{"size=64m", "mode=1777"}}},
	} {
		parse := parseVolume
		if tc.tmpfs {
			parse = parseTmpfs
		}
		got, err := parse(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.in, diff)
		}
	}
	for _, tc := range []struct {
		in    string
		tmpfs bool
		want  string
	}{
		{"/data", false, "no anonymous volumes"},
		{"data:/data", false, `host path "data" is not absolute (berth has no named volumes)`},
		{"./x:/x", false, "not absolute"},
		{"/x:x", false, `container path "x" is not absolute`},
		{"/x:/y:z", false, `unknown volume option "z"`},
		{"/x:/y:ro:extra", false, "want HOST_PATH:CONTAINER_PATH"},
		{"/x:/y:rshared", false, `unknown volume option "rshared" (want ro, rw)`},
		{"tmp", true, `tmpfs path "tmp" is not absolute`},
	} {
		parse := parseVolume
		if tc.tmpfs {
			parse = parseTmpfs
		}
		if got, err := parse(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q = %+v, %v; want an error containing %q", tc.in, got, err, tc.want)
		}
	}
}

func TestCheckRestart(t *testing.T) {
	for _, ok := range []string{"no", "always", "unless-stopped", "on-failure", "on-failure:0", "on-failure:2"} {
		if err := checkRestart(ok); err != nil {
			t.Errorf("checkRestart(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "sometimes", "on-failure:", "on-failure:-1", "on-failure:x", "always:2"} {
		if err := checkRestart(bad); err == nil {
			t.Errorf("checkRestart(%q) = nil, want an error", bad)
		}
	}
}

func lookupFrom(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestParseEnvFile(t *testing.T) {
	file := `# a comment
PLAIN=value
  INDENTED=kept as is  
QUOTED="quotes stay"
EMPTY=
EQUALS=a=b

FROM_HOST
   # indented comment
UNSET_HERE
`
	got, err := parseEnvFile(strings.NewReader(file), lookupFrom(map[string]string{"FROM_HOST": "host value"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PLAIN=value", "INDENTED=kept as is  ", `QUOTED="quotes stay"`, "EMPTY=", "EQUALS=a=b", "FROM_HOST=host value"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, tc := range []struct{ in, want string }{
		{"OK=1\n=value\n", "line 2: environment variable without a name"},
		{"BAD KEY=1\n", `line 1: environment variable "BAD KEY" contains white space`},
	} {
		_, err := parseEnvFile(strings.NewReader(tc.in), lookupFrom(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestContainerConfigFromFlags(t *testing.T) {
	f := newContainerFlags()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	f.add(fs)
	err := fs.Parse([]string{
		"--name", "web", "-h", "box", "-e", "A=1", "-e", "FROM_HOST", "-e", "MISSING", "-w", "/srv", "-u", "nobody",
		"--entrypoint", "", "-m", "512m", "--cpus", "1.5", "--pids-limit", "64", "--read-only",
		"--cap-add", "NET_ADMIN,SYS_TIME", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"--runtime", "crun", "--net", "host", "-p", "127.0.0.1:8080:80", "-l", "team=web",
		"--restart", "on-failure:2", "--platform", "linux/amd64", "-v", "/data:/data:ro", "--tmpfs", "/run", "-it",
		"busybox", "sh", "-c", "echo hi",
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.config(fs, fs.Args(), lookupFrom(map[string]string{"FROM_HOST": "x"}))
	if err != nil {
		t.Fatal(err)
	}
	want := client.ContainerConfig{
		Image: "busybox", Args: []string{"sh", "-c", "echo hi"}, EntrypointSet: true,
		Env: []string{"A=1", "FROM_HOST=x"}, WorkingDir: "/srv", User: "nobody", Hostname: "box",
		Mounts: []client.ContainerMount{
			{Type: "bind", Source: "/data", Destination: "/data", Options: []string{"ro"}},
			{Type: "tmpfs", Destination: "/run"},
		},
		Resources: client.Resources{MemoryBytes: 512 << 20, CPUs: 1.5, PidsLimit: 64},
		ReadOnly:  true, CapAdd: []string{"NET_ADMIN", "SYS_TIME"}, CapDrop: []string{"ALL"},
		SecurityOpt: []string{"no-new-privileges"}, TTY: true, Stdin: true, Runtime: "crun", Network: "host",
		Ports:   []client.PortMapping{{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		Restart: "on-failure:2", Labels: map[string]string{"team": "web"}, Platform: "linux/amd64",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if f.name != "web" {
		t.Errorf("name %q", f.name)
	}

	// No flags: nothing but the image; the entrypoint is the image's.
	f = newContainerFlags()
	fs = pflag.NewFlagSet("run", pflag.ContinueOnError)
	f.add(fs)
	if err := fs.Parse([]string{"busybox"}); err != nil {
		t.Fatal(err)
	}
	got, err = f.config(fs, fs.Args(), lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(client.ContainerConfig{Image: "busybox", Args: []string{}}, got); diff != "" {
		t.Errorf("bare config (-want +got):\n%s", diff)
	}
}
