package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/remote"
	"github.com/berth-dev/berth/internal/remote/remotetest"
)

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Endpoint
		err  string
	}{
		{in: "docker://busybox", want: Endpoint{Transport: Docker, Ref: remote.Reference{Registry: "docker.io", Repository: "library/busybox", Tag: "latest"}}},
		{in: "oci:/tmp/layout", want: Endpoint{Transport: OCI, Path: "/tmp/layout"}},
		{in: "oci:rel/dir:v1.0", want: Endpoint{Transport: OCI, Path: "rel/dir", Name: "v1.0"}},
		{in: "oci-archive:/tmp/a.tar:app:1", want: Endpoint{Transport: OCIArchive, Path: "/tmp/a.tar", Name: "app:1"}},
		{in: "docker-archive:/tmp/a.tar", want: Endpoint{Transport: DockerArchive, Path: "/tmp/a.tar"}},
		{in: "docker-archive:a.tar:localhost:5000/app:1.0", want: Endpoint{Transport: DockerArchive, Path: "a.tar", Name: "localhost:5000/app:1.0"}},
		{in: "busybox", err: "want docker://REF"},
		{in: "dir:/tmp/x", err: "want docker://REF"},
		{in: "oci:", err: "oci needs a path"},
		{in: "docker://Upper", err: "Upper"},
		{in: "docker-archive:a.tar:Bad Name", err: "Bad Name"},
		{in: "docker-archive:a.tar:app@sha256:" + strings.Repeat("a", 64), err: "not by digest"},
	} {
		got, err := ParseEndpoint(tc.in)
		if tc.err != "" {
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseEndpoint(%q) = %v; want an invalid argument error containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseEndpoint(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if again, err := ParseEndpoint(got.String()); err != nil || again != got {
			t.Errorf("ParseEndpoint(%q.String() = %q) = %+v, %v", tc.in, got.String(), again, err)
		}
	}
}

func newClient(t *testing.T) *remote.Client {
	t.Helper()
	c := remote.New(remote.Config{HostsDir: t.TempDir()})
	t.Cleanup(func() { c.Close() })
	return c
}

func endpoint(t *testing.T, s string) Endpoint {
	t.Helper()
	e, err := ParseEndpoint(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestCopyChainKeepsTheIndexDigestAndSkipsWhatTheDestinationHas(t *testing.T) {
	ctx := context.Background()
	reg := remotetest.New(t, remotetest.Options{})
	src := reg.PushIndex(t, "team/multi:1.0", remotetest.Index(t, "linux/amd64", "linux/arm64/v8"))
	c := newClient(t)
	dir := t.TempDir()
	chain := []string{
		"docker://" + reg.Host + "/team/multi:1.0",
		"oci:" + dir + "/layout:v1",
		"oci-archive:" + dir + "/multi.tar:v1",
		"docker://" + reg.Host + "/copy/multi:2.0",
	}
	for i := 1; i < len(chain); i++ {
		var progress bytes.Buffer
		got, err := Copy(ctx, c, endpoint(t, chain[i-1]), endpoint(t, chain[i]), Options{Progress: &progress})
		if err != nil {
			t.Fatalf("copy %s to %s: %v", chain[i-1], chain[i], err)
		}
		if got.Digest != src.Digest {
			t.Errorf("copy to %s: digest %s, want %s", chain[i], got.Digest, src.Digest)
		}
		// index, 2 manifests, 2 configs, 2 layers
		if n := strings.Count(progress.String(), "copying "); n != 7 {
			t.Errorf("copy to %s: %d progress lines, want 7:\n%s", chain[i], n, progress.String())
		}
	}
	if _, desc, err := c.Resolve(ctx, endpoint(t, chain[3]).Ref); err != nil || desc.Digest != src.Digest {
		t.Errorf("copied image resolves to %s (%v), want %s", desc.Digest, err, src.Digest)
	}

	// Again into the layout and the registry: only manifests are read.
	for _, dst := range []string{chain[1], chain[3]} {
		var progress bytes.Buffer
		if _, err := Copy(ctx, c, endpoint(t, chain[2]), endpoint(t, dst), Options{Progress: &progress}); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(progress.String(), "layer") || strings.Contains(progress.String(), "config") {
			t.Errorf("second copy to %s read blobs the destination has:\n%s", dst, progress.String())
		}
	}
}

func TestCopyToDockerArchiveNamesAfterTheRegistryImage(t *testing.T) {
	ctx := context.Background()
	reg := remotetest.New(t, remotetest.Options{})
	reg.PushIndex(t, "team/multi:1.0", remotetest.Index(t, "linux/amd64", "linux/arm64/v8"))
	c := newClient(t)
	p := filepath.Join(t.TempDir(), "multi.tar")
	arm := ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	got, err := Copy(ctx, c, endpoint(t, "docker://"+reg.Host+"/team/multi:1.0"), endpoint(t, "docker-archive:"+p), Options{Platform: &arm})
	if err != nil {
		t.Fatal(err)
	}
	platforms, err := c.Platforms(ctx, endpoint(t, "docker://"+reg.Host+"/team/multi:1.0").Ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != platforms[1].Digest {
		t.Errorf("copied %s, want the arm64 manifest %s", got.Digest, platforms[1].Digest)
	}
	r, err := archive.OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var names []string
	for _, img := range r.Images() {
		names = append(names, img.Name)
	}
	if want := []string{reg.Host + "/team/multi:1.0"}; !cmp.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("archive mode %v (%v), want 0644", fi.Mode(), err)
	}
}

func TestFailedCopyLeavesNoPartialFile(t *testing.T) {
	ctx := context.Background()
	reg := remotetest.New(t, remotetest.Options{})
	reg.PushImage(t, "team/app:1.0", remotetest.RandomImage(t, 2, 4096))
	c := newClient(t)
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	if _, err := Copy(ctx, c, endpoint(t, "docker://"+reg.Host+"/team/app:1.0"), endpoint(t, "oci:"+layout), Options{}); err != nil {
		t.Fatal(err)
	}
	// Corrupt a layer of the layout, keeping its size.
	var m ocispec.Manifest
	var idx ocispec.Index
	readJSON(t, filepath.Join(layout, "index.json"), &idx)
	readJSON(t, filepath.Join(layout, "blobs", "sha256", idx.Manifests[0].Digest.Encoded()), &m)
	layer := m.Layers[1].Digest
	p := filepath.Join(layout, "blobs", "sha256", layer.Encoded())
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[100] ^= 1
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, dst := range []string{"oci-archive:" + dir + "/out.tar", "docker-archive:" + dir + "/out.tar:app:1", "docker://" + reg.Host + "/team/corrupt:1"} {
		_, err := Copy(ctx, c, endpoint(t, "oci:"+layout), endpoint(t, dst), Options{})
		// A registry may notice first and refuse the blob itself.
		registryRefused := strings.HasPrefix(dst, "docker://") && err != nil && strings.Contains(err.Error(), "DIGEST_INVALID")
		if !registryRefused && !errors.Is(err, errdefs.ErrFailedPrecondition) || err == nil || !strings.Contains(err.Error(), layer.String()) ||
			!registryRefused && !strings.Contains(err.Error(), "digest mismatch") {
			t.Errorf("copy of a corrupted layer to %s: %v; want a digest mismatch naming %s", dst, err, layer)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Errorf("files left beside the layout: %v", names)
	}
	if _, _, err := newClient(t).Resolve(ctx, endpoint(t, "docker://"+reg.Host+"/team/corrupt:1").Ref); !errdefs.IsNotFound(err) {
		t.Errorf("the registry has a tag for the failed copy: %v", err)
	}
}

func readJSON(t *testing.T, p string, v any) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}
