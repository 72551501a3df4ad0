package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-dev/berth/internal/testutil"
)

// skopeoRun runs skopeo (Debian's, 1.9) without a signature policy and
// returns its stdout.
func skopeoRun(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("skopeo", append([]string{"--insecure-policy"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// skopeoManifest is what `skopeo inspect --raw` prints for an image: its
// manifest, of which the config is compared here.
type skopeoManifest struct {
	MediaType string `json:"mediaType"`
	Config    struct {
		Digest string `json:"digest"`
	} `json:"config"`
}

func skopeoRaw(t *testing.T, args ...string) skopeoManifest {
	t.Helper()
	var m skopeoManifest
	out := skopeoRun(t, append([]string{"inspect", "--raw"}, args...)...)
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("skopeo inspect --raw %v: %v\n%s", args, err, out)
	}
	return m
}

// skopeoDigest is the digest `skopeo inspect` reports.
func skopeoDigest(t *testing.T, args ...string) string {
	t.Helper()
	var doc struct{ Digest string }
	out := skopeoRun(t, append([]string{"inspect"}, args...)...)
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("skopeo inspect %v: %v\n%s", args, err, out)
	}
	return doc.Digest
}

// berthInspect is what `berth remote inspect` says of a registry image.
type berthInspect struct {
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Config    struct {
		Digest string `json:"digest"`
	} `json:"config"`
}

func berthRemoteInspect(t *testing.T, hosts, ref string) berthInspect {
	t.Helper()
	var doc berthInspect
	out := runBerth(t, nil, "remote", "inspect", ref, "--hosts-dir", hosts).ok(t)
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("berth remote inspect %s: %v\n%s", ref, err, out)
	}
	return doc
}

// berthCopy runs berth remote copy and returns the digest it printed.
func berthCopy(t *testing.T, hosts, src, dst string) string {
	t.Helper()
	out := strings.TrimSpace(runBerth(t, nil, "remote", "copy", src, dst, "--hosts-dir", hosts).ok(t))
	_, dgst, ok := strings.Cut(out, "@sha256:")
	if !ok {
		t.Fatalf("berth remote copy %s %s printed %q", src, dst, out)
	}
	return "sha256:" + dgst
}

// ociImage is img with OCI media types: skopeo and podman find an image
// in a layout by name only when it has them.
func ociImage(t *testing.T, img v1.Image) v1.Image {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	out := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for _, l := range layers {
		if out, err = mutate.Append(out, mutate.Addendum{Layer: l, MediaType: types.OCILayer}); err != nil {
			t.Fatal(err)
		}
	}
	if out, err = mutate.ConfigFile(out, cfg); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCopyInteropWithSkopeo copies the busybox test image through every
// transport with berth and reads the results with skopeo, and the other
// way round, through Debian's docker-registry on loopback.
func TestCopyInteropWithSkopeo(t *testing.T) {
	testutil.RequireBinary(t, "skopeo")
	host := testutil.StartRegistry(t, "")
	src := host + "/library/busybox:e2e"        // Docker media types
	srcOCI := host + "/library/busybox:oci-e2e" // OCI media types
	busybox := testutil.BusyboxImage(t)
	testutil.PushImage(t, busybox, src)
	testutil.PushImage(t, ociImage(t, busybox), srcOCI)
	hosts := t.TempDir()
	dir := t.TempDir()
	orig := berthRemoteInspect(t, hosts, src)
	origOCI := berthRemoteInspect(t, hosts, srcOCI)

	t.Run("berth writes, skopeo reads", func(t *testing.T) {
		// A layout's only image is found without a name whatever its media
		// types; by name skopeo finds OCI ones only.
		layout := filepath.Join(dir, "berth-layout")
		if got := berthCopy(t, hosts, "docker://"+src, "oci:"+layout); got != orig.Digest {
			t.Errorf("berth copy to oci: %s, want %s", got, orig.Digest)
		}
		if got := skopeoDigest(t, "oci:"+layout); got != orig.Digest {
			t.Errorf("skopeo inspect oci: %s, want %s", got, orig.Digest)
		}
		skopeoRun(t, "copy", "oci:"+layout, "oci:"+filepath.Join(dir, "skopeo-from-berth-layout")+":v1")
		named := filepath.Join(dir, "berth-layout-named")
		berthCopy(t, hosts, "docker://"+src, "oci:"+named+":docker")
		berthCopy(t, hosts, "docker://"+srcOCI, "oci:"+named+":v1")
		if got := skopeoDigest(t, "oci:"+named+":v1"); got != origOCI.Digest {
			t.Errorf("skopeo inspect oci:…:v1: %s, want %s", got, origOCI.Digest)
		}
		skopeoRun(t, "copy", "--dest-tls-verify=false", "oci:"+named+":v1", "docker://"+host+"/skopeo/from-berth-layout:1")
		if doc := berthRemoteInspect(t, hosts, host+"/skopeo/from-berth-layout:1"); doc.Digest != origOCI.Digest {
			t.Errorf("skopeo copy of berth's layout: %s, want %s", doc.Digest, origOCI.Digest)
		}

		ociTar := filepath.Join(dir, "berth-oci.tar")
		berthCopy(t, hosts, "docker://"+srcOCI, "oci-archive:"+ociTar+":v1")
		if got := skopeoDigest(t, "oci-archive:"+ociTar+":v1"); got != origOCI.Digest {
			t.Errorf("skopeo inspect oci-archive: %s, want %s", got, origOCI.Digest)
		}
		skopeoRun(t, "copy", "oci-archive:"+ociTar+":v1", "oci:"+filepath.Join(dir, "skopeo-from-berth-archive")+":v1")

		dockerTar := filepath.Join(dir, "berth-docker.tar")
		berthCopy(t, hosts, "docker://"+src, "docker-archive:"+dockerTar)
		if m := skopeoRaw(t, "docker-archive:"+dockerTar); m.Config.Digest != orig.Config.Digest {
			t.Errorf("skopeo reads the docker-archive's config as %s, want %s", m.Config.Digest, orig.Config.Digest)
		}
		skopeoRun(t, "copy", "--dest-tls-verify=false", "docker-archive:"+dockerTar+":"+src, "docker://"+host+"/skopeo/from-berth-archive:1")
		if doc := berthRemoteInspect(t, hosts, host+"/skopeo/from-berth-archive:1"); doc.Config.Digest != orig.Config.Digest {
			t.Errorf("skopeo copy of berth's docker-archive: config %s, want %s", doc.Config.Digest, orig.Config.Digest)
		}

		berthCopy(t, hosts, "docker://"+src, "docker://"+host+"/berth/copied:1")
		if got := skopeoDigest(t, "--tls-verify=false", "docker://"+host+"/berth/copied:1"); got != orig.Digest {
			t.Errorf("skopeo inspect of berth's registry copy: %s, want %s", got, orig.Digest)
		}
	})

	t.Run("skopeo writes, berth reads", func(t *testing.T) {
		// skopeo converts to OCI media types, and the config with them,
		// when it writes a layout.
		layout := filepath.Join(dir, "skopeo-layout")
		skopeoRun(t, "copy", "--src-tls-verify=false", "docker://"+src, "oci:"+layout+":s1")
		want := skopeoDigest(t, "oci:"+layout+":s1")
		wantConfig := skopeoRaw(t, "oci:"+layout+":s1").Config.Digest
		if got := berthCopy(t, hosts, "oci:"+layout+":s1", "docker://"+host+"/from-skopeo/oci:1"); got != want {
			t.Errorf("berth copy of skopeo's layout: %s, want %s", got, want)
		}
		if doc := berthRemoteInspect(t, hosts, host+"/from-skopeo/oci:1"); doc.Digest != want || doc.Config.Digest != wantConfig {
			t.Errorf("from skopeo's layout: %+v; want digest %s, config %s", doc, want, wantConfig)
		}

		ociTar := filepath.Join(dir, "skopeo-oci.tar")
		skopeoRun(t, "copy", "--src-tls-verify=false", "docker://"+srcOCI, "oci-archive:"+ociTar+":s1")
		if got := berthCopy(t, hosts, "oci-archive:"+ociTar, "docker://"+host+"/from-skopeo/oci-archive:1"); got != origOCI.Digest {
			t.Errorf("berth copy of skopeo's oci-archive: %s, want %s", got, origOCI.Digest)
		}

		dockerTar := filepath.Join(dir, "skopeo-docker.tar")
		skopeoRun(t, "copy", "--src-tls-verify=false", "docker://"+src, "docker-archive:"+dockerTar+":busybox:s")
		berthCopy(t, hosts, "docker-archive:"+dockerTar+":busybox:s", "docker://"+host+"/from-skopeo/docker-archive:1")
		doc := berthRemoteInspect(t, hosts, host+"/from-skopeo/docker-archive:1")
		if doc.Config.Digest != orig.Config.Digest || doc.MediaType != "application/vnd.docker.distribution.manifest.v2+json" {
			t.Errorf("from skopeo's docker-archive: %+v; want a Docker manifest of config %s", doc, orig.Config.Digest)
		}
		// The same archive read again gives the same manifest.
		if again := berthCopy(t, hosts, "docker-archive:"+dockerTar, "oci:"+filepath.Join(dir, "from-skopeo-archive")); again != doc.Digest {
			t.Errorf("second read of skopeo's docker-archive: manifest %s, first %s", again, doc.Digest)
		}

		skopeoRun(t, "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "docker://"+src, "docker://"+host+"/skopeo/copied:1")
		if doc := berthRemoteInspect(t, hosts, host+"/skopeo/copied:1"); doc.Digest != orig.Digest {
			t.Errorf("berth inspect of skopeo's registry copy: %s, want %s", doc.Digest, orig.Digest)
		}
		berthCopy(t, hosts, "docker://"+host+"/skopeo/copied:1", "oci:"+filepath.Join(dir, "from-skopeo-registry")+":v1")
	})
}
