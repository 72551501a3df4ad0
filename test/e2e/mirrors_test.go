package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// withHostsDir configures d (not yet started) to read hosts.toml files from
// a new directory, and returns it.
func withHostsDir(t *testing.T, d *daemon) string {
	t.Helper()
	dir := t.TempDir()
	d.config = filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(d.config, []byte(fmt.Sprintf("version = 1\n[registry]\nconfig_path = %q\n", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeHostsFile writes dir/registry/hosts.toml.
func writeHostsFile(t *testing.T, dir, registry, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, registry), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, registry, "hosts.toml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// catalog lists the repositories of the registry at host.
func catalog(t *testing.T, host string) []string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + host + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Repositories []string `json:"repositories"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc.Repositories
}

func TestPullFailsOverFromADownMirrorToTheNext(t *testing.T) {
	d := newDaemon(t)
	dir := withHostsDir(t, d)
	d.start()
	mirror := testutil.StartRegistry(t, "")
	testutil.PushImage(t, testutil.BusyboxImage(t), mirror+"/library/busybox:e2e")
	// The first mirror and the server itself are down: only the second
	// mirror can serve the pull.
	writeHostsFile(t, dir, "registry.example", fmt.Sprintf(`server = "http://%s"

[host."http://%s"]
  capabilities = ["pull", "resolve"]

[host."http://%s"]
  capabilities = ["pull", "resolve"]
`, closedPort(t), closedPort(t), mirror))

	ref := "registry.example/library/busybox:e2e"
	out := d.berth(nil, "pull", ref).ok(t)
	if !strings.Contains(out, ref+": pulled sha256:") {
		t.Errorf("pull output %q", out)
	}
	if !strings.Contains(d.logs.String(), "registry host failed, trying the next one") {
		t.Errorf("the daemon did not log the failover:\n%s", d.logs.String())
	}
	// The image is whole and unpacked.
	if img, err := d.client("default").GetImage(t.Context(), ref); err != nil || img.Snapshot == "" {
		t.Errorf("image %+v, %v", img, err)
	}
}

func TestPushGoesToTheServerNeverToAPullOnlyMirror(t *testing.T) {
	d := newDaemon(t)
	dir := withHostsDir(t, d)
	d.start()
	src := busyboxRef(t)
	d.berth(nil, "pull", "-q", src).ok(t)
	server := testutil.StartRegistry(t, "")
	mirror := testutil.StartRegistry(t, "")
	writeHostsFile(t, dir, server, fmt.Sprintf(`server = "http://%s"

[host."http://%s"]
  capabilities = ["pull", "resolve"]
`, server, mirror))

	ref := server + "/app/busybox:v1"
	r := d.berth(nil, "push", src, ref)
	r.ok(t)
	everyBlobEndsIn(t, blobPhases(r.stderr), "done", "mounted", "push")
	if repos := catalog(t, mirror); len(repos) != 0 {
		t.Errorf("the pull-only mirror received repositories %v", repos)
	}
	if repos := catalog(t, server); !slices.Contains(repos, "app/busybox") {
		t.Errorf("the server has repositories %v, want app/busybox", repos)
	}
	// Pulled back by digest: the mirror lacks it, the server serves it.
	byDigest := server + "/app/busybox@" + imageDigest(t, d, "default", src)
	d.berth(nil, "-n", "back", "pull", "-q", byDigest).ok(t)
	if repos := catalog(t, mirror); len(repos) != 0 {
		t.Errorf("the mirror has repositories %v after the pull", repos)
	}
}
