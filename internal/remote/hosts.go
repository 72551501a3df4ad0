package remote

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
)

// DefaultHostsDir is the directory holding one <host>/hosts.toml per
// registry, plus _default/hosts.toml for registries without their own.
const DefaultHostsDir = "/etc/berth/certs.d"

// Capability is what a host may be used for; a HostPlan has a set of them.
type Capability uint8

// The capabilities of hosts.toml's "capabilities" key.
const (
	CapPull    Capability = 1 << iota // fetch blobs and manifests by digest
	CapResolve                        // resolve tags to digests, list tags
	CapPush                           // upload blobs and manifests

	capAll = CapPull | CapResolve | CapPush
)

var capabilityNames = []struct {
	c    Capability
	name string
}{{CapPull, "pull"}, {CapResolve, "resolve"}, {CapPush, "push"}}

// String lists the set as in hosts.toml: "pull,resolve".
func (c Capability) String() string {
	var names []string
	for _, n := range capabilityNames {
		if c&n.c != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}

func capabilityByName(name string) Capability {
	for _, n := range capabilityNames {
		if n.name == name {
			return n.c
		}
	}
	return 0
}

// ClientCert is a TLS client certificate and its key. Key is empty when the
// certificate file holds the key too.
type ClientCert struct {
	Cert string
	Key  string
}

// Where a HostPlan's credentials come from (HostPlan.Credentials).
const (
	CredentialsHostsFile = "hosts.toml"  // username/password or auth in the hosts file
	CredentialsProvider  = "credentials" // the Credentials given to New
	CredentialsNone      = "anonymous"
)

// HostPlan is one host to contact for a registry, with the settings used
// for it. Plans come from hosts.toml (or built-in defaults) and are ordered:
// mirrors first, in file order, then the registry's own server.
type HostPlan struct {
	Registry     string     // registry named by the reference, e.g. "docker.io"
	URL          string     // API root, e.g. "https://registry-1.docker.io/v2"
	Host         string     // host[:port] contacted
	Mirror       bool       // false for the registry's own server
	Capabilities Capability // what this host is used for
	PlainHTTP    bool       // http:// URL
	HTTPFallback bool       // https, falling back to http if the server answers TLS with plain HTTP (loopback hosts without configuration)
	SkipVerify   bool       // TLS certificate not verified
	CAs          []string   // extra CA certificate files, added to the system pool
	ClientCerts  []ClientCert
	Header       http.Header // extra request headers
	// Credentials is where credentials for this host come from: one of the
	// Credentials* constants. Plans from Explain have it filled in; plans
	// without hosts.toml credentials otherwise leave it empty.
	Credentials string
	Source      string // the hosts.toml file, "" for built-in defaults

	base *url.URL
	auth *Auth // from hosts.toml
}

// hostsConfig reads hosts.toml files on demand. A parsed file is reused
// while its modification time and size are unchanged, so edits take effect
// on the next request without a restart. Safe for concurrent use.
type hostsConfig struct {
	dir string

	mu    sync.Mutex
	files map[string]cachedHostsFile
}

type cachedHostsFile struct {
	mod  time.Time
	size int64
	cfg  *hostsFile
}

// hostsFile is a parsed hosts.toml.
type hostsFile struct {
	path   string
	server hostEntry // top-level keys; url nil when "server" is absent
	hosts  []hostEntry
}

type hostEntry struct {
	url          *url.URL
	caps         Capability // 0: all
	skipVerify   bool
	cas          []string
	clients      []ClientCert
	overridePath bool
	header       http.Header
	auth         *Auth
}

func newHostsConfig(dir string) *hostsConfig {
	return &hostsConfig{dir: dir, files: map[string]cachedHostsFile{}}
}

// plans returns the hosts for registry in order: the mirrors of
// <dir>/<registry>/hosts.toml (or <dir>/_default/hosts.toml), then the
// server.
func (h *hostsConfig) plans(ctx context.Context, registry string) ([]HostPlan, error) {
	f, err := h.file(ctx, registry)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return []HostPlan{defaultServer(registry)}, nil
	}
	var plans []HostPlan
	for _, e := range f.hosts {
		p := e.plan(registry, f.path)
		p.Mirror = true
		plans = append(plans, p)
	}
	var server HostPlan
	if f.server.url != nil {
		server = f.server.plan(registry, f.path)
	} else {
		server = defaultServer(registry)
		e := f.server
		e.url = server.base
		fallback := server.HTTPFallback
		server = e.plan(registry, f.path)
		server.HTTPFallback = fallback
	}
	return append(plans, server), nil
}

// file finds and parses the hosts.toml for registry; nil when there is none.
func (h *hostsConfig) file(ctx context.Context, registry string) (*hostsFile, error) {
	if h.dir == "" {
		return nil, nil
	}
	var candidates []string
	if registry != "" && registry != "." && registry != ".." && !strings.ContainsAny(registry, `/\`) {
		candidates = append(candidates, filepath.Join(h.dir, registry, "hosts.toml"))
	}
	candidates = append(candidates, filepath.Join(h.dir, "_default", "hosts.toml"))
	for _, p := range candidates {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("hosts file %q: %w: %w", p, err, errdefs.ErrFailedPrecondition)
		}
		return h.load(ctx, p, fi)
	}
	return nil, nil
}

func (h *hostsConfig) load(ctx context.Context, p string, fi fs.FileInfo) (*hostsFile, error) {
	h.mu.Lock()
	c, ok := h.files[p]
	h.mu.Unlock()
	if ok && c.mod.Equal(fi.ModTime()) && c.size == fi.Size() {
		return c.cfg, nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("hosts file %q: %w: %w", p, err, errdefs.ErrFailedPrecondition)
	}
	cfg, err := parseHostsFile(p, data)
	if err != nil {
		return nil, err
	}
	if cfg.hasCredentials() && fi.Mode().Perm()&0o077 != 0 {
		log.G(ctx).Warn("hosts file holds credentials but is readable by other users", "path", p, "mode", fi.Mode().Perm().String())
	}
	h.mu.Lock()
	h.files[p] = cachedHostsFile{mod: fi.ModTime(), size: fi.Size(), cfg: cfg}
	h.mu.Unlock()
	return cfg, nil
}

func (f *hostsFile) hasCredentials() bool {
	if f.server.auth != nil {
		return true
	}
	for _, e := range f.hosts {
		if e.auth != nil {
			return true
		}
	}
	return false
}

func (e hostEntry) plan(registry, source string) HostPlan {
	caps := e.caps
	if caps == 0 {
		caps = capAll
	}
	// Plans are handed out (Explain), while entries stay cached: copy.
	p := HostPlan{
		Registry:     registry,
		URL:          e.url.String(),
		Host:         e.url.Host,
		Capabilities: caps,
		PlainHTTP:    e.url.Scheme == "http",
		SkipVerify:   e.skipVerify,
		CAs:          slices.Clone(e.cas),
		ClientCerts:  slices.Clone(e.clients),
		Header:       e.header.Clone(),
		Source:       source,
		base:         e.url,
		auth:         e.auth,
	}
	if e.auth != nil {
		p.Credentials = CredentialsHostsFile
	}
	return p
}

// defaultServer is the plan used without configuration: https://<registry>/v2
// (registry-1.docker.io for docker.io), with plain-HTTP fallback for
// loopback registries.
func defaultServer(registry string) HostPlan {
	host := registry
	if registry == DockerHub {
		host = "registry-1.docker.io"
	}
	u := &url.URL{Scheme: "https", Host: host, Path: "/v2"}
	return HostPlan{
		Registry:     registry,
		URL:          u.String(),
		Host:         host,
		Capabilities: capAll,
		HTTPFallback: isLoopback(host),
		base:         u,
	}
}

// isLoopback reports whether host[:port] is localhost, 127.0.0.0/8 or ::1.
func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseHostsFile parses a hosts.toml. Errors are ErrInvalidArgument and
// name the file and the key.
func parseHostsFile(p string, data []byte) (*hostsFile, error) {
	fail := func(key, format string, args ...any) error {
		return fmt.Errorf("hosts file %q: key %s: %s: %w", p, key, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
	}
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("hosts file %q: line %d, column %d: %s: %w", p, row, col, de.Error(), errdefs.ErrInvalidArgument)
		}
		return nil, fmt.Errorf("hosts file %q: %v: %w", p, err, errdefs.ErrInvalidArgument)
	}
	dir := filepath.Dir(p)
	f := &hostsFile{path: p}

	top := map[string]any{}
	for k, v := range doc {
		if k != "server" && k != "host" {
			top[k] = v
		}
	}
	server, err := parseHostEntry(dir, "", top, fail)
	if err != nil {
		return nil, err
	}
	if v, ok := doc["server"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, fail("server", "must be a string URL, got %s", tomlType(v))
		}
		u, err := parseHostURL(s, server.overridePath)
		if err != nil {
			return nil, fail("server", "%v", err)
		}
		server.url = u
	}
	f.server = server

	if v, ok := doc["host"]; ok {
		hosts, ok := v.(map[string]any)
		if !ok {
			return nil, fail("host", "must be a table of [host.\"URL\"] sections, got %s", tomlType(v))
		}
		for _, name := range hostOrder(data, hosts) {
			key := fmt.Sprintf("host.%q", name)
			tbl, ok := hosts[name].(map[string]any)
			if !ok {
				return nil, fail(key, "must be a table, got %s", tomlType(hosts[name]))
			}
			e, err := parseHostEntry(dir, key+".", tbl, fail)
			if err != nil {
				return nil, err
			}
			u, err := parseHostURL(name, e.overridePath)
			if err != nil {
				return nil, fail(key, "%v", err)
			}
			e.url = u
			f.hosts = append(f.hosts, e)
		}
	}
	return f, nil
}

type failFunc func(key, format string, args ...any) error

// parseHostEntry reads the per-host keys of one table (the top level or a
// [host."URL"] section). prefix names the table in errors.
func parseHostEntry(dir, prefix string, tbl map[string]any, fail failFunc) (hostEntry, error) {
	var e hostEntry
	var username, password, auth string
	var hasUser, hasPass, hasAuth bool
	keys := make([]string, 0, len(tbl))
	for k := range tbl {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := tbl[k]
		key := prefix + k
		var err error
		switch k {
		case "capabilities":
			var names []string
			if names, err = stringList(v); err != nil {
				return e, fail(key, "%v", err)
			}
			if len(names) == 0 {
				return e, fail(key, "empty list: give one or more of pull, resolve, push")
			}
			for _, n := range names {
				c := capabilityByName(n)
				if c == 0 {
					return e, fail(key, "unknown capability %q (want pull, resolve or push)", n)
				}
				e.caps |= c
			}
		case "skip_verify":
			b, ok := v.(bool)
			if !ok {
				return e, fail(key, "must be true or false, got %s", tomlType(v))
			}
			e.skipVerify = b
		case "override_path":
			b, ok := v.(bool)
			if !ok {
				return e, fail(key, "must be true or false, got %s", tomlType(v))
			}
			e.overridePath = b
		case "ca":
			var files []string
			if files, err = stringList(v); err != nil {
				return e, fail(key, "%v", err)
			}
			for _, f := range files {
				e.cas = append(e.cas, resolvePath(dir, f))
			}
		case "client":
			if e.clients, err = parseClientCerts(dir, v); err != nil {
				return e, fail(key, "%v", err)
			}
		case "header":
			if e.header, err = parseHeader(v); err != nil {
				return e, fail(key, "%v", err)
			}
		case "username":
			if username, hasUser = v.(string); !hasUser {
				return e, fail(key, "must be a string, got %s", tomlType(v))
			}
		case "password":
			if password, hasPass = v.(string); !hasPass {
				return e, fail(key, "must be a string, got %s", tomlType(v))
			}
		case "auth":
			if auth, hasAuth = v.(string); !hasAuth {
				return e, fail(key, "must be a string, got %s", tomlType(v))
			}
		default:
			return e, fail(key, "unknown key")
		}
	}
	switch {
	case hasAuth && (hasUser || hasPass):
		return e, fail(prefix+"auth", "set either auth or username and password, not both")
	case hasAuth:
		a, err := decodeAuth(auth)
		if err != nil {
			return e, fail(prefix+"auth", "%v", err)
		}
		e.auth = &a
	case hasUser != hasPass:
		return e, fail(prefix+"username", "username and password must be set together")
	case hasUser:
		if username == "" {
			return e, fail(prefix+"username", "empty")
		}
		e.auth = &Auth{Username: username, Password: password}
	}
	return e, nil
}

// decodeAuth decodes docker's "auth" field: base64 of "username:password".
func decodeAuth(s string) (Auth, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return Auth{}, fmt.Errorf("not valid base64 of \"username:password\"")
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" {
		return Auth{}, fmt.Errorf("decodes to no \"username:password\" pair")
	}
	return Auth{Username: user, Password: pass}, nil
}

// parseHostURL parses a host or server URL. A missing scheme means https.
// Without override_path, "/v2" is appended to the path unless already there.
func parseHostURL(s string, overridePath bool) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("bad URL %q: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("URL %q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("URL %q has no host", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("URL %q: only scheme, host and path are allowed", s)
	}
	p := strings.TrimSuffix(u.Path, "/")
	if !overridePath && !strings.HasSuffix(p, "/v2") {
		p = path.Join("/", p, "v2")
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: p}, nil
}

func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func stringList(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("list holds a %s, want strings", tomlType(x))
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("must be a string or a list of strings, got %s", tomlType(v))
}

// parseClientCerts accepts "cert.pem" (cert and key in one file),
// ["a.pem", ["b.cert", "b.key"]] and [["cert", "key"], …].
func parseClientCerts(dir string, v any) ([]ClientCert, error) {
	if s, ok := v.(string); ok {
		return []ClientCert{{Cert: resolvePath(dir, s)}}, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("must be a file name or a list of files or [cert, key] pairs, got %s", tomlType(v))
	}
	var out []ClientCert
	for _, x := range list {
		switch x := x.(type) {
		case string:
			out = append(out, ClientCert{Cert: resolvePath(dir, x)})
		case []any:
			pair, err := stringList(x)
			if err != nil || len(pair) != 2 {
				return nil, fmt.Errorf("a pair must be [\"cert file\", \"key file\"]")
			}
			out = append(out, ClientCert{Cert: resolvePath(dir, pair[0]), Key: resolvePath(dir, pair[1])})
		default:
			return nil, fmt.Errorf("list holds a %s, want file names or [cert, key] pairs", tomlType(x))
		}
	}
	return out, nil
}

func parseHeader(v any) (http.Header, error) {
	tbl, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("must be a table of header names, got %s", tomlType(v))
	}
	h := http.Header{}
	for name, val := range tbl {
		vals, err := stringList(val)
		if err != nil {
			return nil, fmt.Errorf("header %q: %v", name, err)
		}
		for _, s := range vals {
			h.Add(name, s)
		}
	}
	return h, nil
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case int64, float64:
		return "number"
	case []any:
		return "list"
	case map[string]any:
		return "table"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%T", v)
}

// hostOrder returns the keys of the host table in the order they first
// appear in the document: mirrors are tried in file order. TOML decoding
// into a map loses that order, so the document is walked again with the
// go-toml AST parser.
func hostOrder(data []byte, hosts map[string]any) []string {
	var order []string
	seen := map[string]bool{}
	add := func(name string) {
		if _, ok := hosts[name]; ok && !seen[name] {
			seen[name] = true
			order = append(order, name)
		}
	}
	var p unstable.Parser
	p.Reset(data)
	inTable := false
	for p.NextExpression() {
		n := p.Expression()
		switch n.Kind {
		case unstable.Table, unstable.ArrayTable:
			inTable = true
			if k := keyParts(n.Key()); len(k) >= 2 && k[0] == "host" {
				add(k[1])
			}
		case unstable.KeyValue:
			if inTable {
				continue
			}
			k := keyParts(n.Key())
			if len(k) >= 2 && k[0] == "host" {
				add(k[1])
			} else if len(k) == 1 && k[0] == "host" && n.Value().Kind == unstable.InlineTable {
				it := n.Value().Children()
				for it.Next() {
					if kv := it.Node(); kv.Kind == unstable.KeyValue {
						if k := keyParts(kv.Key()); len(k) >= 1 {
							add(k[0])
						}
					}
				}
			}
		}
	}
	// Anything the walk missed keeps a stable order after the rest.
	var rest []string
	for name := range hosts {
		if !seen[name] {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	return append(order, rest...)
}

func keyParts(it unstable.Iterator) []string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}
