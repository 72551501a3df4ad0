package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// diffIDs returns the layer diffIDs of image name's config, from berth
// image inspect in namespace ns.
func diffIDs(t *testing.T, d *daemon, ns, name string) []string {
	t.Helper()
	var doc struct {
		Image struct {
			Snapshot string `json:"snapshot"`
		} `json:"image"`
		Config struct {
			RootFS struct {
				DiffIDs []string `json:"diff_ids"`
			} `json:"rootfs"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(d.berth(nil, "-n", ns, "image", "inspect", name).ok(t)), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Image.Snapshot == "" || len(doc.Config.RootFS.DiffIDs) == 0 {
		t.Fatalf("image %s in %s: snapshot %q, diffIDs %v", name, ns, doc.Image.Snapshot, doc.Config.RootFS.DiffIDs)
	}
	return doc.Config.RootFS.DiffIDs
}

func TestSaveAndLoadArchives(t *testing.T) {
	d := newDaemon(t)
	d.start()
	src := busyboxRef(t)
	d.berth(nil, "pull", "-q", src).ok(t)
	want := imageDigest(t, d, "default", src)
	layers := diffIDs(t, d, "default", src)
	dir := t.TempDir()
	oci, docker := filepath.Join(dir, "busybox-oci.tar"), filepath.Join(dir, "busybox-docker.tar")
	d.berth(nil, "save", "-o", oci, src).ok(t)
	d.berth(nil, "save", "--format", "docker-archive", "-o", docker, src).ok(t)

	// skopeo reads both, and finds the image's config in each.
	cfg := configDigest(t, "--tls-verify=false", "docker://"+src)
	for _, archive := range []string{"oci-archive:" + oci, "docker-archive:" + docker} {
		if got := configDigest(t, archive); got != cfg {
			t.Errorf("%s: config %s, want %s", archive, got, cfg)
		}
	}

	// Gone from the daemon, then loaded back from the OCI archive: the
	// same image, unpacked.
	d.berth(nil, "rmi", src).ok(t)
	d.berth(nil, "system", "prune").ok(t)
	if out := d.berth(nil, "load", "-i", oci).ok(t); out != "Loaded image: "+src+"\n" {
		t.Errorf("load output %q", out)
	}
	if got := imageDigest(t, d, "default", src); got != want {
		t.Errorf("loaded %s, saved %s", got, want)
	}
	if got := diffIDs(t, d, "default", src); strings.Join(got, " ") != strings.Join(layers, " ") {
		t.Errorf("loaded diffIDs %v, want %v", got, layers)
	}
	// The load's lease is gone: after a prune the image still has it all.
	d.berth(nil, "system", "prune").ok(t)
	if leases := strings.TrimSpace(d.berth(nil, "lease", "ls", "-q").ok(t)); leases != "" {
		t.Errorf("leases left after load: %q", leases)
	}
	diffIDs(t, d, "default", src)

	// The docker-archive loads into another namespace with the same layers.
	if out := d.berth(nil, "-n", "docker", "load", "-i", docker).ok(t); !strings.HasPrefix(out, "Loaded image: ") {
		t.Errorf("load output %q", out)
	}
	if got := diffIDs(t, d, "docker", src); strings.Join(got, " ") != strings.Join(layers, " ") {
		t.Errorf("docker-archive diffIDs %v, want %v", got, layers)
	}

	// An archive skopeo wrote loads too.
	sk := filepath.Join(dir, "skopeo.tar")
	skopeo(t, "copy", "--src-tls-verify=false", "docker://"+src, "oci-archive:"+sk+":example.com/skopeo/busybox:v1")
	if out := d.berth(nil, "-n", "skopeo", "load", "-i", sk).ok(t); out != "Loaded image: example.com/skopeo/busybox:v1\n" {
		t.Errorf("load of skopeo's archive printed %q", out)
	}
	diffIDs(t, d, "skopeo", "example.com/skopeo/busybox:v1")

	// A file that is no archive is refused, and nothing is left behind.
	d.berth(nil, "-n", "bad", "load", "-i", filepath.Join(dir, "missing.tar")).fails(t, 1, "missing.tar")
	if imgs, err := d.client("bad").ListImages(context.Background()); err == nil && len(imgs) != 0 {
		t.Errorf("images after a failed load: %+v", imgs)
	}
}

// skopeo runs Debian's skopeo without a signature policy and returns its
// stdout.
func skopeo(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(testutil.RequireBinary(t, "skopeo"), append([]string{"--insecure-policy"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// configDigest returns the config digest of the manifest skopeo inspects
// at transport:name.
func configDigest(t *testing.T, args ...string) string {
	t.Helper()
	var m struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(skopeo(t, append([]string{"inspect", "--raw"}, args...)...)), &m); err != nil {
		t.Fatalf("skopeo inspect %v: %v", args, err)
	}
	return m.Config.Digest
}
