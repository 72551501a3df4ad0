package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// pushedDigest is the digest in `berth push` output ("REF: pushed sha256:… in …").
var pushedDigest = regexp.MustCompile(`: pushed (sha256:[0-9a-f]{64}) in `)

// blobPhases returns, from the plain progress lines of a pull or push on
// stderr ("layer 0123456789ab: uploading"), the phases each config and
// layer went through.
func blobPhases(stderr string) map[string][]string {
	out := map[string][]string{}
	for _, line := range strings.Split(stderr, "\n") {
		item, phase, ok := strings.Cut(line, ": ")
		if ok && (strings.HasPrefix(item, "layer ") || strings.HasPrefix(item, "config ")) {
			out[item] = append(out[item], phase)
		}
	}
	return out
}

// everyBlobEndsIn fails t unless every config and layer in phases ended in
// want and none went through avoid.
func everyBlobEndsIn(t *testing.T, phases map[string][]string, want, avoid, what string) {
	t.Helper()
	if len(phases) < 2 {
		t.Errorf("%s: progress for %d blobs, want the config and layers: %v", what, len(phases), phases)
	}
	for item, ps := range phases {
		if ps[len(ps)-1] != want || strings.Contains(strings.Join(ps, " "), avoid) {
			t.Errorf("%s: %s went %v, want it to end %s without %s", what, item, ps, want, avoid)
		}
	}
}

// imageDigest returns the target digest of image name in namespace ns.
func imageDigest(t *testing.T, d *daemon, ns, name string) string {
	t.Helper()
	img, err := d.client(ns).GetImage(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return img.Target.Digest
}

func TestPushThroughDaemonAndPullBackByDigest(t *testing.T) {
	d := newDaemon(t)
	d.start()
	src := busyboxRef(t)
	d.berth(nil, "pull", "-q", src).ok(t)
	want := imageDigest(t, d, "default", src)
	dst := testutil.StartRegistry(t, "") + "/pushed/busybox:v1"

	r := d.berth(nil, "push", src, dst)
	out := r.ok(t)
	m := pushedDigest.FindStringSubmatch(out)
	if !strings.HasPrefix(out, dst+": pushed ") || m == nil || m[1] != want {
		t.Fatalf("push output %q, want %s", out, want)
	}
	everyBlobEndsIn(t, blobPhases(r.stderr), "done", "mounted", "first push")
	if !strings.Contains(r.stderr, ": uploading\n") {
		t.Errorf("first push shows no upload:\n%s", r.stderr)
	}

	// A second push finds every blob in the registry and uploads none.
	r = d.berth(nil, "push", src, dst)
	r.ok(t)
	everyBlobEndsIn(t, blobPhases(r.stderr), "exists", "uploading", "second push")
	if digest := strings.TrimSpace(d.berth(nil, "push", "-q", src, dst).ok(t)); digest != want {
		t.Errorf("push -q printed %q, want %s", digest, want)
	}

	// Gone locally, then pulled back from the new registry by digest.
	d.berth(nil, "rmi", src).ok(t)
	d.berth(nil, "system", "prune").ok(t)
	byDigest := strings.TrimSuffix(dst, ":v1") + "@" + want
	r = d.berth(nil, "pull", byDigest)
	r.ok(t)
	everyBlobEndsIn(t, blobPhases(r.stderr), "done", "exists", "pull back")
	if got := imageDigest(t, d, "default", byDigest); got != want {
		t.Errorf("pulled back %s, want %s", got, want)
	}

	d.berth(nil, "push", "localhost/never/pulled:v1", dst).fails(t, 1, "not found")
	d.berth(nil, "push", "--platform", "linux/s390x", byDigest, dst).fails(t, 1, "not linux/s390x")
}

func TestPushMountsAcrossRepositoriesOfARegistry(t *testing.T) {
	d := newDaemon(t)
	d.start()
	host := testutil.StartRegistry(t, "")
	src := host + "/library/busybox:e2e"
	testutil.PushImage(t, testutil.BusyboxImage(t), src)
	d.berth(nil, "pull", "-q", src).ok(t)

	// The pull recorded where the blobs came from: a push to another
	// repository of the same registry mounts them.
	r := d.berth(nil, "push", src, host+"/team/app:v1")
	r.ok(t)
	everyBlobEndsIn(t, blobPhases(r.stderr), "mounted", "uploading", "push to a second repository")

	// And from there, to a third repository.
	d.berth(nil, "tag", src, host+"/team/app:v1").ok(t)
	r = d.berth(nil, "push", host+"/team/app:v1", host+"/team/tool:v1")
	r.ok(t)
	everyBlobEndsIn(t, blobPhases(r.stderr), "mounted", "uploading", "push to a third repository")

	// The mounted image is whole: another namespace pulls it.
	d.berth(nil, "-n", "other", "pull", "-q", host+"/team/tool:v1").ok(t)
	if got, want := imageDigest(t, d, "other", host+"/team/tool:v1"), imageDigest(t, d, "default", src); got != want {
		t.Errorf("pulled %s, pushed %s", got, want)
	}
}

func TestPullAndPushMetrics(t *testing.T) {
	d := newDaemon(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	d.config = filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(d.config, []byte("version = 1\n[metrics]\naddress = \""+addr+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.start()
	src := busyboxRef(t)
	d.berth(nil, "pull", "-q", src).ok(t)
	d.berth(nil, "push", "-q", src, testutil.StartRegistry(t, "")+"/copy:v1").ok(t)
	d.berth(nil, "pull", strings.TrimSuffix(src, ":e2e")+":missing").fails(t, 1, "not found")

	body := scrapeMetrics(t, addr)
	for _, want := range []string{
		"berth_image_pulls_in_flight 0\n",
		"berth_image_pushes_in_flight 0\n",
		"berth_image_pull_duration_seconds_count 1\n",
		"berth_image_push_duration_seconds_count 1\n",
		`berth_image_pull_errors_total{reason="not_found"} 1` + "\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, name := range []string{"berth_image_pull_bytes_total", "berth_image_push_bytes_total"} {
		var n float64
		if _, err := fmt.Sscanf(metricLine(body, name), name+" %g", &n); err != nil || n < 100<<10 {
			t.Errorf("%s = %v (%v), want the busybox layer's bytes", name, n, err)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
}

func scrapeMetrics(t *testing.T, addr string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// metricLine returns the line of an unlabelled metric.
func metricLine(body, name string) string {
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, name+" ") {
			return line
		}
	}
	return ""
}
