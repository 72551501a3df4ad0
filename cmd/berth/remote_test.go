package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/remote"
	"github.com/berth-dev/berth/internal/remote/remotetest"
	"github.com/opencontainers/go-digest"
)

// runBerthStdin is runBerth with stdin.
func runBerthStdin(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// testHome is the HOME and DOCKER_CONFIG parent of this package's tests,
// set in TestMain: the Docker CLI's config package reads $DOCKER_CONFIG once
// per process, so it must be set before any test runs, and the real
// ~/.docker is then never read or written.
var testHome string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testHome = dir
	os.Setenv("HOME", dir)
	os.Setenv("DOCKER_CONFIG", filepath.Join(dir, "docker"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// remoteEnv returns the Docker config file's path, removed before and after
// the test, and an empty hosts directory for --hosts-dir.
func remoteEnv(t *testing.T) (dockerConfig, hostsDir string) {
	t.Helper()
	dockerConfig = remote.DefaultDockerConfigPath()
	if !strings.HasPrefix(dockerConfig, testHome+string(filepath.Separator)) {
		t.Fatalf("docker config %s is outside the test's HOME %s", dockerConfig, testHome)
	}
	rm := func() {
		if err := os.Remove(dockerConfig); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	rm()
	t.Cleanup(rm)
	return dockerConfig, t.TempDir()
}

// berthOK runs berth and fails the test unless it exits 0.
func berthOK(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := runBerth(t, args...)
	if code != exitOK {
		t.Fatalf("berth %s: exit code %d, stderr:\n%s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

func TestLoginChecksAndSavesCredentials(t *testing.T) {
	cfgPath, hosts := remoteEnv(t)
	reg := remotetest.New(t, remotetest.Options{Auth: remotetest.AuthBasic, Username: "alice", Password: "s3cret"})
	reg.PushImage(t, "team/app:1.0", remotetest.RandomImage(t, 1, 64))

	// Wrong password: exit 1, unauthorized, nothing saved.
	code, stdout, stderr := runBerth(t, "login", reg.Host, "-u", "alice", "-p", "wrong", "--hosts-dir", hosts)
	if code != exitError || stdout != "" {
		t.Errorf("bad password: exit code %d, stdout %q; want %d and nothing", code, stdout, exitError)
	}
	if want := "berth: log in to " + reg.Host + ": unauthorized: incorrect username or password"; !strings.Contains(stderr, want) {
		t.Errorf("bad password: stderr %q, want %q", stderr, want)
	}
	if _, err := os.Stat(cfgPath); !os.IsNotExist(err) {
		t.Errorf("bad password: %s exists (%v), want nothing saved", cfgPath, err)
	}

	// No password and no terminal: a clear error, not a hang.
	code, _, stderr = runBerth(t, "login", reg.Host, "-u", "alice", "--hosts-dir", hosts)
	if code != exitError || !strings.Contains(stderr, "stdin is not a terminal") {
		t.Errorf("no tty: exit code %d, stderr %q; want 1 and \"stdin is not a terminal\"", code, stderr)
	}

	// Anonymous access is refused before login.
	if code, _, stderr := runBerth(t, "remote", "tags", reg.Host+"/team/app", "--hosts-dir", hosts); code != exitError {
		t.Errorf("tags before login: exit code %d, want %d; stderr %q", code, exitError, stderr)
	}

	code, stdout, stderr = runBerthStdin(t, "s3cret\n", "login", reg.Host, "-u", "alice", "--password-stdin", "--hosts-dir", hosts)
	if code != exitOK || stdout != "Login Succeeded\n" {
		t.Fatalf("login: exit code %d, stdout %q, stderr %q; want Login Succeeded", code, stdout, stderr)
	}
	cfg, err := os.ReadFile(cfgPath)
	if err != nil || !strings.Contains(string(cfg), reg.Host) {
		t.Fatalf("config after login: %q, %v; want an entry for %s", cfg, err, reg.Host)
	}
	if got := berthOK(t, "remote", "tags", reg.Host+"/team/app", "--hosts-dir", hosts); got != "1.0\n" {
		t.Errorf("tags after login: %q, want \"1.0\\n\"", got)
	}

	if got := berthOK(t, "logout", reg.Host); got != "Removed login credentials for "+reg.Host+"\n" {
		t.Errorf("logout: stdout %q", got)
	}
	cfg, _ = os.ReadFile(cfgPath)
	if strings.Contains(string(cfg), reg.Host) {
		t.Errorf("config after logout still names %s:\n%s", reg.Host, cfg)
	}
	code, _, stderr = runBerth(t, "logout", reg.Host)
	if code != exitError || !strings.Contains(stderr, "not logged in to "+reg.Host) {
		t.Errorf("second logout: exit code %d, stderr %q; want 1 and \"not logged in\"", code, stderr)
	}
}

func TestLoginUsageErrors(t *testing.T) {
	remoteEnv(t)
	for _, args := range [][]string{
		{"login", "a", "b"},
		{"login", "-p", "x", "--password-stdin", "-u", "u"},
		{"login", "--password-stdin"},
		{"logout", "a", "b"},
	} {
		if code, _, stderr := runBerth(t, args...); code != exitUsage {
			t.Errorf("berth %s: exit code %d, want %d; stderr %q", strings.Join(args, " "), code, exitUsage, stderr)
		}
	}
}

// inspectDoc runs remote inspect and decodes its output.
func inspectDoc(t *testing.T, args ...string) remoteDoc {
	t.Helper()
	out := berthOK(t, append([]string{"remote", "inspect"}, args...)...)
	var doc remoteDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	return doc
}

func TestRemoteInspectImage(t *testing.T) {
	_, hosts := remoteEnv(t)
	reg := remotetest.New(t, remotetest.Options{})
	desc := reg.PushImage(t, "team/app:1.0", remotetest.RandomImage(t, 2, 256))
	ref := reg.Host + "/team/app:1.0"

	doc := inspectDoc(t, ref, "--hosts-dir", hosts)
	if doc.Name != ref || doc.Digest != desc.Digest.String() || doc.MediaType != desc.MediaType {
		t.Errorf("name, digest, mediaType = %s %s %s; want %s %s %s", doc.Name, doc.Digest, doc.MediaType, ref, desc.Digest, desc.MediaType)
	}
	if len(doc.Platforms) != 0 || doc.Manifest != nil {
		t.Errorf("platforms %v, manifest %v: want none for a single manifest", doc.Platforms, doc.Manifest)
	}
	if len(doc.Layers) != 2 {
		t.Fatalf("layers %v, want 2", doc.Layers)
	}
	size := desc.Size
	for _, l := range doc.Layers {
		if l.Size <= 0 || !strings.HasPrefix(l.Digest, "sha256:") || l.MediaType == "" {
			t.Errorf("layer %+v incomplete", l)
		}
		size += l.Size
	}
	if doc.Config.Digest == "" || doc.Size <= size {
		t.Errorf("config digest %q, size %d: want a digest and more than manifest+layers (%d)", doc.Config.Digest, doc.Size, size)
	}
	if n := reg.Count("GET", doc.Layers[0].Digest); n != 0 {
		t.Errorf("inspect fetched a layer %d times, want 0", n)
	}

	_, raw, _ := runBerth(t, "remote", "inspect", "--raw", ref, "--hosts-dir", hosts)
	if got := digest.FromString(raw); got != desc.Digest {
		t.Errorf("--raw digest %s, want %s", got, desc.Digest)
	}

	code, _, stderr := runBerth(t, "remote", "inspect", reg.Host+"/team/nothing:1.0", "--hosts-dir", hosts)
	if code != exitError || !strings.HasPrefix(stderr, "berth: ") || !strings.Contains(stderr, "not found") {
		t.Errorf("missing image: exit code %d, stderr %q; want 1 and not found", code, stderr)
	}
}

func TestRemoteInspectIndexListsAndPicksPlatforms(t *testing.T) {
	_, hosts := remoteEnv(t)
	reg := remotetest.New(t, remotetest.Options{})
	desc := reg.PushIndex(t, "team/multi:1.0", remotetest.Index(t, "linux/amd64", "linux/arm64/v8"))
	ref := reg.Host + "/team/multi:1.0"

	doc := inspectDoc(t, ref, "--platform", "linux/arm64", "--hosts-dir", hosts)
	if doc.Digest != desc.Digest.String() || !strings.Contains(doc.MediaType, "index") {
		t.Errorf("digest %s, mediaType %s; want the index %s", doc.Digest, doc.MediaType, desc.Digest)
	}
	var platforms []string
	for _, p := range doc.Platforms {
		platforms = append(platforms, p.Platform)
	}
	if strings.Join(platforms, " ") != "linux/amd64 linux/arm64/v8" {
		t.Errorf("platforms %v, want linux/amd64 linux/arm64/v8", platforms)
	}
	if doc.Manifest == nil || doc.Manifest.Platform != "linux/arm64/v8" || doc.Manifest.Digest != doc.Platforms[1].Digest {
		t.Errorf("manifest %+v, want the linux/arm64/v8 entry %s", doc.Manifest, doc.Platforms[1].Digest)
	}
	if doc.Config.OS != "linux" || doc.Config.Architecture != "arm64" || len(doc.Layers) != 1 {
		t.Errorf("config %s/%s with %d layers, want linux/arm64 with 1", doc.Config.OS, doc.Config.Architecture, len(doc.Layers))
	}

	amd := inspectDoc(t, ref, "--platform", "linux/amd64", "--hosts-dir", hosts)
	if amd.Config.Architecture != "amd64" || amd.Manifest.Digest != doc.Platforms[0].Digest {
		t.Errorf("linux/amd64: config arch %s, manifest %+v", amd.Config.Architecture, amd.Manifest)
	}

	_, raw, _ := runBerth(t, "remote", "inspect", "--raw", ref, "--hosts-dir", hosts)
	if got := digest.FromString(raw); got != desc.Digest {
		t.Errorf("--raw digest %s, want the index's %s", got, desc.Digest)
	}

	code, _, stderr := runBerth(t, "remote", "inspect", ref, "--platform", "linux/s390x", "--hosts-dir", hosts)
	if code != exitError || !strings.Contains(stderr, "linux/arm64/v8") {
		t.Errorf("missing platform: exit code %d, stderr %q; want 1 listing the platforms", code, stderr)
	}
	if code, _, _ := runBerth(t, "remote", "inspect", ref, "--platform", "", "--hosts-dir", hosts); code != exitOK {
		t.Errorf("default platform: exit code %d", code)
	}
}

func TestRemoteTags(t *testing.T) {
	_, hosts := remoteEnv(t)
	reg := remotetest.New(t, remotetest.Options{})
	img := remotetest.RandomImage(t, 1, 64)
	for _, tag := range []string{"1.0", "1.1", "latest"} {
		reg.PushImage(t, "team/app:"+tag, img)
	}
	if got := berthOK(t, "remote", "tags", reg.Host+"/team/app", "--hosts-dir", hosts); got != "1.0\n1.1\nlatest\n" {
		t.Errorf("tags: %q", got)
	}
	var tags []string
	out := berthOK(t, "remote", "tags", reg.Host+"/team/app", "--format", "json", "--hosts-dir", hosts)
	if err := json.Unmarshal([]byte(out), &tags); err != nil || len(tags) != 3 {
		t.Errorf("tags --format json: %q (%v)", out, err)
	}
}

func TestRemoteCopy(t *testing.T) {
	_, hosts := remoteEnv(t)
	reg := remotetest.New(t, remotetest.Options{})
	other := remotetest.New(t, remotetest.Options{})
	src := reg.Host + "/team/multi:1.0"
	desc := reg.PushIndex(t, "team/multi:1.0", remotetest.Index(t, "linux/amd64", "linux/arm64/v8"))

	for _, dst := range []string{reg.Host + "/backup/multi:copy", other.Host + "/mirror/multi:1.0"} {
		t.Run(dst, func(t *testing.T) {
			out := berthOK(t, "remote", "copy", "docker://"+src, "docker://"+dst, "--hosts-dir", hosts)
			name, _, _ := strings.Cut(dst, ":copy")
			name, _, _ = strings.Cut(name, ":1.0")
			if want := name + "@" + desc.Digest.String() + "\n"; out != want {
				t.Errorf("copy printed %q, want %q", out, want)
			}
			doc := inspectDoc(t, dst, "--hosts-dir", hosts)
			if doc.Digest != desc.Digest.String() || len(doc.Platforms) != 2 {
				t.Errorf("destination digest %s with %d platforms, want %s with 2", doc.Digest, len(doc.Platforms), desc.Digest)
			}
		})
	}
	mounts := 0
	for _, r := range reg.Requests() {
		if r.Method == "POST" && strings.Contains(r.RawQuery, "mount=") {
			mounts++
		}
	}
	if mounts == 0 {
		t.Errorf("copy within one registry made no cross-repository mount")
	}
}

func TestRegistryExplainListsMirrorThenServer(t *testing.T) {
	cfgPath, hosts := remoteEnv(t)
	dir := filepath.Join(hosts, "registry.example.com")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	hostsFile := filepath.Join(dir, "hosts.toml")
	toml := `server = "https://registry.example.com"
ca = "server-ca.pem"

[host."https://mirror.internal:5000"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
  client = [["client.cert", "client.key"]]

[host."http://10.0.0.2:5000"]
  capabilities = ["push"]
`
	if err := os.WriteFile(hostsFile, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	out := berthOK(t, "registry", "explain", "registry.example.com/team/app:1.0", "--hosts-dir", hosts)
	want := []string{
		"registry.example.com (pull): 2 hosts tried in this order",
		"1. https://mirror.internal:5000/v2 (mirror)",
		"capabilities: pull,resolve",
		"skip_verify:  true",
		"client cert:  " + filepath.Join(dir, "client.cert") + " (key " + filepath.Join(dir, "client.key") + ")",
		"credentials:  none (anonymous)",
		"source:       " + hostsFile,
		"2. https://registry.example.com/v2 (server)",
		"ca:           " + filepath.Join(dir, "server-ca.pem"),
	}
	pos := 0
	for _, w := range want {
		i := strings.Index(out[pos:], w)
		if i < 0 {
			t.Fatalf("explain output lacks %q after offset %d:\n%s", w, pos, out)
		}
		pos += i + len(w)
	}
	if strings.Contains(out, "10.0.0.2") {
		t.Errorf("pull plan lists the push-only host:\n%s", out)
	}

	out = berthOK(t, "registry", "explain", "registry.example.com/team/app", "--capability", "push", "--format", "json", "--hosts-dir", hosts)
	var docs []hostDoc
	if err := json.Unmarshal([]byte(out), &docs); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	if len(docs) != 2 || docs[0].URL != "http://10.0.0.2:5000/v2" || !docs[0].PlainHTTP || !docs[0].Mirror || docs[1].Mirror {
		t.Errorf("push plan: %+v; want the plain-HTTP mirror, then the server", docs)
	}

	// A loopback registry without a file, with credentials in the Docker config.
	cfg := `{"auths": {"127.0.0.1:5000": {"auth": "dTpw"}}}`
	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out = berthOK(t, "registry", "explain", "127.0.0.1:5000/app", "--hosts-dir", hosts)
	for _, w := range []string{
		"1. https://127.0.0.1:5000/v2 (server)",
		"transport:    TLS, falling back to plain HTTP (loopback)",
		"credentials:  yes, from " + cfgPath,
		"source:       built-in defaults",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("loopback explain lacks %q:\n%s", w, out)
		}
	}
	if code, _, stderr := runBerth(t, "registry", "explain", "x", "--capability", "delete"); code != exitUsage {
		t.Errorf("bad --capability: exit code %d, stderr %q; want %d", code, stderr, exitUsage)
	}
}
