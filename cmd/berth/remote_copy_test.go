package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/remote/remotetest"
	"github.com/berth-dev/berth/internal/transfer"
)

// copyOK runs berth remote copy and checks it printed the destination
// pinned to a digest and one progress line per blob read; it returns the
// digest.
func copyOK(t *testing.T, hosts, src, dst string, flags ...string) string {
	t.Helper()
	args := append([]string{"remote", "copy", src, dst, "--hosts-dir", hosts}, flags...)
	code, stdout, stderr := runBerth(t, args...)
	if code != exitOK {
		t.Fatalf("berth %s: exit code %d, stderr:\n%s", strings.Join(args, " "), code, stderr)
	}
	e, err := transfer.ParseEndpoint(dst)
	if err != nil {
		t.Fatal(err)
	}
	want := dst
	if e.Transport == transfer.Docker {
		want = e.Ref.Name()
	}
	name, dgst, ok := strings.Cut(strings.TrimSuffix(stdout, "\n"), "@sha256:")
	if !ok || name != want || len(dgst) != 64 {
		t.Errorf("copy to %s printed %q, want %s@sha256:…", dst, stdout, want)
	}
	if !strings.HasPrefix(dst, "docker://") || !strings.HasPrefix(src, "docker://") {
		if !strings.Contains(stderr, "copying manifest sha256:") {
			t.Errorf("copy to %s: no progress lines on stderr:\n%s", dst, stderr)
		}
	}
	return "sha256:" + dgst
}

func TestRemoteCopyBetweenEveryTransport(t *testing.T) {
	_, hosts := remoteEnv(t)
	reg := remotetest.New(t, remotetest.Options{})
	desc := reg.PushIndex(t, "team/multi:1.0", remotetest.Index(t, "linux/amd64", "linux/arm64/v8"))
	src := "docker://" + reg.Host + "/team/multi:1.0"
	dir := t.TempDir()
	layout := "oci:" + filepath.Join(dir, "layout")
	ociTar := "oci-archive:" + filepath.Join(dir, "multi.tar")
	dockerTar := "docker-archive:" + filepath.Join(dir, "docker.tar")

	// Every platform survives registry -> oci -> oci-archive -> registry.
	for _, step := range [][2]string{
		{src, layout + ":v1"},
		{layout + ":v1", ociTar + ":v1"},
		{ociTar, "docker://" + reg.Host + "/from/oci-archive:1"},
		{layout, "docker://" + reg.Host + "/from/oci:1"},
	} {
		if got := copyOK(t, hosts, step[0], step[1]); got != desc.Digest.String() {
			t.Errorf("copy %s to %s: digest %s, want the index %s", step[0], step[1], got, desc.Digest)
		}
	}
	for _, ref := range []string{reg.Host + "/from/oci-archive:1", reg.Host + "/from/oci:1"} {
		if doc := inspectDoc(t, ref, "--hosts-dir", hosts); doc.Digest != desc.Digest.String() || len(doc.Platforms) != 2 {
			t.Errorf("%s: digest %s with %d platforms, want %s with 2", ref, doc.Digest, len(doc.Platforms), desc.Digest)
		}
	}

	// A docker-archive holds one platform: --platform picks it, and the
	// config survives every way in and out.
	arm := inspectDoc(t, reg.Host+"/team/multi:1.0", "--platform", "linux/arm64", "--hosts-dir", hosts)
	armDigest := copyOK(t, hosts, ociTar+":v1", dockerTar+":team/multi:arm", "--platform", "linux/arm64")
	if armDigest != arm.Manifest.Digest {
		t.Errorf("docker-archive copy picked %s, want the arm64 manifest %s", armDigest, arm.Manifest.Digest)
	}
	loaded := copyOK(t, hosts, dockerTar, "docker://"+reg.Host+"/from/docker-archive:arm")
	doc := inspectDoc(t, reg.Host+"/from/docker-archive:arm", "--hosts-dir", hosts)
	if doc.Config.Digest != arm.Config.Digest || doc.Digest != loaded || doc.MediaType != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Errorf("image loaded from the docker-archive: %+v; want the arm64 config %s in a Docker manifest %s", doc, arm.Config.Digest, loaded)
	}
	// Reading the same archive again builds the same manifest.
	if again := copyOK(t, hosts, dockerTar+":team/multi:arm", layout+":from-docker"); again != loaded {
		t.Errorf("second read of the docker-archive gave manifest %s, first %s", again, loaded)
	}
	// Registry -> docker-archive -> registry, with this host's platform.
	host := inspectDoc(t, reg.Host+"/team/multi:1.0", "--hosts-dir", hosts)
	copyOK(t, hosts, src, dockerTar)
	copyOK(t, hosts, dockerTar+":"+reg.Host+"/team/multi:1.0", "docker://"+reg.Host+"/from/docker-archive:host")
	if doc := inspectDoc(t, reg.Host+"/from/docker-archive:host", "--hosts-dir", hosts); doc.Config.Digest != host.Config.Digest {
		t.Errorf("host platform through docker-archive: config %s, want %s", doc.Config.Digest, host.Config.Digest)
	}

	// The layout gained an image per name and kept the others.
	code, _, stderr := runBerth(t, "remote", "copy", layout, ociTar, "--hosts-dir", hosts)
	if code != exitError || !strings.Contains(stderr, `holds 2 images, name one: "v1", "from-docker"`) {
		t.Errorf("copy from a layout of two images without a name: exit %d, stderr %q", code, stderr)
	}
}

func TestRemoteCopyErrors(t *testing.T) {
	_, hosts := remoteEnv(t)
	reg := remotetest.New(t, remotetest.Options{})
	reg.PushIndex(t, "team/multi:1.0", remotetest.Index(t, "linux/amd64", "linux/arm64/v8"))
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "a.tar")
	copyOK(t, hosts, "docker://"+reg.Host+"/team/multi:1.0", "oci-archive:"+tarPath+":v1")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"oci-archive:" + tarPath + ":v2", "oci:" + dir + "/x"}, exitError, `image "v2": not in the archive (it has: "v1"): not found`},
		{[]string{"oci-archive:" + dir + "/missing.tar", "oci:" + dir + "/x"}, exitError, "missing.tar: no such file or directory: not found"},
		{[]string{"oci:" + dir, "oci:" + dir + "/x"}, exitError, "neither an OCI image layout"},
		{[]string{"docker://" + reg.Host + "/team/multi:1.0", "docker-archive:" + dir + "/d.tar", "--platform", "linux/s390x"}, exitError, "no manifest for platform linux/s390x (the index has: linux/amd64, linux/arm64/v8)"},
		{[]string{"docker://" + reg.Host + "/team/multi:1.0", "oci:" + dir + "/y", "--platform", "linux/arm64"}, exitUsage, "--platform applies to a docker-archive destination"},
		{[]string{"docker://" + reg.Host + "/team/multi:1.0", "docker-archive:" + dir + "/nodir/d.tar"}, exitError, "does not exist: not found"},
		{[]string{"dir:/tmp/x", "docker://localhost:5000/a"}, exitError, "transport dir: not supported"},
		{[]string{"localhost:5000/a", "docker://localhost:5000/b"}, exitUsage, "want docker://REF"},
		{[]string{"docker://UPPER/Case", "docker://localhost:5000/b"}, exitUsage, "UPPER"},
		{[]string{"docker://localhost:5000/a"}, exitUsage, "requires exactly 2 arguments"},
	} {
		code, stdout, stderr := runBerth(t, append(append([]string{"remote", "copy"}, tc.args...), "--hosts-dir", hosts)...)
		if code != tc.code || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("copy %v: exit code %d, stdout %q, stderr %q; want %d and %q", tc.args, code, stdout, stderr, tc.code, tc.want)
		}
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 {
		t.Errorf("failed copies left files: %v", left)
	}
}
