package remote

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/errdefs"
)

// planView is the part of a HostPlan the parsing tests compare.
type planView struct {
	URL      string
	Caps     string
	Mirror   bool
	Plain    bool
	Fallback bool
	Skip     bool
	CAs      []string
	Certs    []ClientCert
	Header   http.Header
	Creds    string
	Auth     *Auth
}

func views(plans []HostPlan) []planView {
	var out []planView
	for _, p := range plans {
		out = append(out, planView{
			URL: p.URL, Caps: p.Capabilities.String(), Mirror: p.Mirror, Plain: p.PlainHTTP,
			Fallback: p.HTTPFallback, Skip: p.SkipVerify, CAs: p.CAs, Certs: p.ClientCerts,
			Header: p.Header, Creds: p.Credentials, Auth: p.auth,
		})
	}
	return out
}

func TestHostsPlans(t *testing.T) {
	const all = "pull,resolve,push"
	tests := []struct {
		name     string
		registry string
		file     string // "" means no hosts.toml
		want     func(dir string) []planView
	}{
		{
			name: "no file", registry: "registry.test",
			want: func(string) []planView { return []planView{{URL: "https://registry.test/v2", Caps: all}} },
		},
		{
			name: "docker hub default server", registry: "docker.io",
			want: func(string) []planView { return []planView{{URL: "https://registry-1.docker.io/v2", Caps: all}} },
		},
		{
			name: "loopback falls back to http", registry: "127.0.0.1:5000",
			want: func(string) []planView {
				return []planView{{URL: "https://127.0.0.1:5000/v2", Caps: all, Fallback: true}}
			},
		},
		{
			name: "localhost falls back to http", registry: "localhost:5000",
			want: func(string) []planView {
				return []planView{{URL: "https://localhost:5000/v2", Caps: all, Fallback: true}}
			},
		},
		{
			name: "mirrors in file order then server", registry: "docker.io",
			file: `
server = "https://registry-1.docker.io"

[host."https://z-mirror.test"]
  capabilities = ["pull", "resolve"]

[host."http://a-mirror.test:5000"]
  capabilities = ["pull"]
  skip_verify = true
`,
			want: func(string) []planView {
				return []planView{
					{URL: "https://z-mirror.test/v2", Caps: "pull,resolve", Mirror: true},
					{URL: "http://a-mirror.test:5000/v2", Caps: "pull", Mirror: true, Plain: true, Skip: true},
					{URL: "https://registry-1.docker.io/v2", Caps: all},
				}
			},
		},
		{
			name: "dotted keys keep order", registry: "registry.test",
			file: `
host."https://second.test".capabilities = ["pull"]
host."https://first.test".capabilities = ["resolve"]
`,
			want: func(string) []planView {
				return []planView{
					{URL: "https://second.test/v2", Caps: "pull", Mirror: true},
					{URL: "https://first.test/v2", Caps: "resolve", Mirror: true},
					{URL: "https://registry.test/v2", Caps: all},
				}
			},
		},
		{
			name: "tls files, paths and headers", registry: "registry.test",
			file: `
server = "https://registry.test"
ca = "root.pem"

[host."mirror.test/cache"]
  ca = ["a.pem", "/etc/ssl/b.pem"]
  client = ["both.pem", ["c.cert", "/k/c.key"]]
  [host."mirror.test/cache".header]
    x-one = "1"
    x-two = ["a", "b"]

[host."https://proxy.test/v2/registry"]
  override_path = true
  client = [["d.cert", "d.key"]]
`,
			want: func(dir string) []planView {
				return []planView{
					{
						URL: "https://mirror.test/cache/v2", Caps: all, Mirror: true,
						CAs:    []string{filepath.Join(dir, "a.pem"), "/etc/ssl/b.pem"},
						Certs:  []ClientCert{{Cert: filepath.Join(dir, "both.pem")}, {Cert: filepath.Join(dir, "c.cert"), Key: "/k/c.key"}},
						Header: http.Header{"X-One": {"1"}, "X-Two": {"a", "b"}},
					},
					{
						URL: "https://proxy.test/v2/registry", Caps: all, Mirror: true,
						Certs: []ClientCert{{Cert: filepath.Join(dir, "d.cert"), Key: filepath.Join(dir, "d.key")}},
					},
					{URL: "https://registry.test/v2", Caps: all, CAs: []string{filepath.Join(dir, "root.pem")}},
				}
			},
		},
		{
			name: "top-level settings apply to the default server", registry: "localhost:5000",
			file: `
capabilities = ["pull", "resolve"]
skip_verify = true
`,
			want: func(string) []planView {
				return []planView{{URL: "https://localhost:5000/v2", Caps: "pull,resolve", Fallback: true, Skip: true}}
			},
		},
		{
			name: "explicit server has no fallback", registry: "localhost:5000",
			file: `server = "http://localhost:5000"`,
			want: func(string) []planView {
				return []planView{{URL: "http://localhost:5000/v2", Caps: all, Plain: true}}
			},
		},
		{
			name: "credentials", registry: "registry.test",
			file: `
username = "upstream"
password = "pw0"

[host."https://m1.test"]
  username = "robot"
  password = "s3cret"

[host."https://m2.test"]
  auth = "cm9ib3Q6czNjcmV0OndpdGg6Y29sb25z"
`,
			want: func(string) []planView {
				return []planView{
					{URL: "https://m1.test/v2", Caps: all, Mirror: true, Creds: CredentialsHostsFile, Auth: &Auth{Username: "robot", Password: "s3cret"}},
					{URL: "https://m2.test/v2", Caps: all, Mirror: true, Creds: CredentialsHostsFile, Auth: &Auth{Username: "robot", Password: "s3cret:with:colons"}},
					{URL: "https://registry.test/v2", Caps: all, Creds: CredentialsHostsFile, Auth: &Auth{Username: "upstream", Password: "pw0"}},
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.file != "" {
				writeHosts(t, dir, tt.registry, tt.file)
			}
			plans, err := newHostsConfig(dir).plans(context.Background(), tt.registry)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want(filepath.Join(dir, tt.registry)), views(plans)); diff != "" {
				t.Errorf("plans (-want +got):\n%s", diff)
			}
			for _, p := range plans {
				wantSource := ""
				if tt.file != "" {
					wantSource = filepath.Join(dir, tt.registry, "hosts.toml")
				}
				if p.Source != wantSource || p.Registry != tt.registry {
					t.Errorf("plan %s: source %q registry %q", p.URL, p.Source, p.Registry)
				}
			}
		})
	}
}

func TestHostsFileErrorsNameFileAndKey(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string
	}{
		{"unknown capability", "[host.\"https://m.test\"]\ncapabilities = [\"pul\"]\n", `key host."https://m.test".capabilities: unknown capability "pul"`},
		{"empty capabilities", "capabilities = []\n", `key capabilities: empty list`},
		{"misspelt key", "[host.\"https://m.test\"]\ncapabilites = [\"pull\"]\n", `key host."https://m.test".capabilites: unknown key`},
		{"skip_verify type", "[host.\"https://m.test\"]\nskip_verify = \"yes\"\n", `key host."https://m.test".skip_verify: must be true or false, got string`},
		{"server type", "server = 5\n", `key server: must be a string URL, got number`},
		{"server scheme", "server = \"ftp://r.test\"\n", `key server: URL "ftp://r.test": scheme must be http or https`},
		{"host URL with query", "[host.\"https://m.test/?x=1\"]\n", `key host."https://m.test/?x=1": URL`},
		{"host not a table", "host = \"https://m.test\"\n", `key host: must be a table`},
		{"bad auth", "[host.\"https://m.test\"]\nauth = \"!!!\"\n", `key host."https://m.test".auth: not valid base64`},
		{"auth and username", "[host.\"https://m.test\"]\nauth = \"dTpw\"\nusername = \"u\"\n", `key host."https://m.test".auth: set either auth or username and password`},
		{"username alone", "username = \"u\"\n", `key username: username and password must be set together`},
		{"client pair", "[host.\"https://m.test\"]\nclient = [[\"only-one\"]]\n", `key host."https://m.test".client: a pair must be`},
		{"ca type", "ca = 3\n", `key ca: must be a string or a list of strings, got number`},
		{"header type", "header = \"x\"\n", `key header: must be a table`},
		{"toml syntax", "server = \"https://r.test\n", `line 1, column`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeHosts(t, dir, "registry.test", tt.file)
			_, err := newHostsConfig(dir).plans(context.Background(), "registry.test")
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%v is not ErrInvalidArgument", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("%q does not name the file %s", err, path)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%q does not say %q", err, tt.want)
			}
		})
	}
}

func TestHostsDefaultDirectoryIsFallback(t *testing.T) {
	dir := t.TempDir()
	writeHosts(t, dir, "_default", "[host.\"https://cache.test\"]\ncapabilities = [\"pull\", \"resolve\"]\n")
	writeHosts(t, dir, "own.test", "[host.\"https://own-mirror.test\"]\n")
	h := newHostsConfig(dir)

	plans, err := h.plans(context.Background(), "other.test")
	if err != nil {
		t.Fatal(err)
	}
	if got := urls(plans); !cmp.Equal(got, []string{"https://cache.test/v2", "https://other.test/v2"}) {
		t.Errorf("_default plans: %v", got)
	}
	plans, err = h.plans(context.Background(), "own.test")
	if err != nil {
		t.Fatal(err)
	}
	if got := urls(plans); !cmp.Equal(got, []string{"https://own-mirror.test/v2", "https://own.test/v2"}) {
		t.Errorf("own plans: %v", got)
	}
}

func urls(plans []HostPlan) []string {
	var out []string
	for _, p := range plans {
		out = append(out, p.URL)
	}
	return out
}

func TestHostsFileReloadedWhenChanged(t *testing.T) {
	dir := t.TempDir()
	path := writeHosts(t, dir, "registry.test", "[host.\"https://one.test\"]\n")
	h := newHostsConfig(dir)
	ctx := context.Background()
	check := func(want ...string) {
		t.Helper()
		plans, err := h.plans(ctx, "registry.test")
		if err != nil {
			t.Fatal(err)
		}
		if got := urls(plans); !cmp.Equal(got, want) {
			t.Errorf("plans %v, want %v", got, want)
		}
	}
	check("https://one.test/v2", "https://registry.test/v2")
	check("https://one.test/v2", "https://registry.test/v2") // cached

	edit := func(content string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	edit("[host.\"https://two.test\"]\n", time.Now().Add(time.Hour))
	check("https://two.test/v2", "https://registry.test/v2")

	edit("[host.\"https://two.test\"]\nbogus = 1\n", time.Now().Add(2*time.Hour))
	if _, err := h.plans(ctx, "registry.test"); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("bad edit: %v", err)
	}
	edit("[host.\"https://three.test\"]\n", time.Now().Add(3*time.Hour))
	check("https://three.test/v2", "https://registry.test/v2")

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	check("https://registry.test/v2")
}

func TestExplainShowsOrderCapabilitiesAndCredentials(t *testing.T) {
	dir := t.TempDir()
	writeHosts(t, dir, "registry.test", `
[host."https://resolve-only.test"]
  capabilities = ["pull", "resolve"]
  username = "mirror-user"
  password = "pw"

[host."https://pull-only.test"]
  capabilities = ["pull"]

[host."https://push-mirror.test"]
  capabilities = ["push"]
`)
	creds := CredentialsFunc(func(_ context.Context, host string) (Auth, error) {
		if host == "registry.test" {
			return Auth{Username: "u", Password: "p"}, nil
		}
		return Auth{}, nil
	})
	c, _ := newTestClient(t, Config{HostsDir: dir, Credentials: creds})
	ref := mustParse(t, "registry.test/app:1")
	type row struct{ URL, Creds string }
	explain := func(capability Capability) []row {
		t.Helper()
		plans, err := c.Explain(context.Background(), ref, capability)
		if err != nil {
			t.Fatal(err)
		}
		var out []row
		for _, p := range plans {
			out = append(out, row{p.URL, p.Credentials})
		}
		return out
	}
	if diff := cmp.Diff([]row{
		{"https://resolve-only.test/v2", CredentialsHostsFile},
		{"https://registry.test/v2", CredentialsProvider},
	}, explain(CapResolve)); diff != "" {
		t.Errorf("resolve (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]row{
		{"https://resolve-only.test/v2", CredentialsHostsFile},
		{"https://pull-only.test/v2", CredentialsNone},
		{"https://registry.test/v2", CredentialsProvider},
	}, explain(CapPull)); diff != "" {
		t.Errorf("pull (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]row{
		{"https://push-mirror.test/v2", CredentialsNone},
		{"https://registry.test/v2", CredentialsProvider},
	}, explain(CapPush)); diff != "" {
		t.Errorf("push (-want +got):\n%s", diff)
	}
}

func TestNoHostWithCapabilityIsFailedPrecondition(t *testing.T) {
	dir := t.TempDir()
	writeHosts(t, dir, "registry.test", "capabilities = [\"pull\", \"resolve\"]\n")
	c, _ := newTestClient(t, Config{HostsDir: dir})
	_, err := c.Explain(context.Background(), mustParse(t, "registry.test/app"), CapPush)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "no host has the push capability") {
		t.Errorf("err = %v", err)
	}
}
