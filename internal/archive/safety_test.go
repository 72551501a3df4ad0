package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

// tarFile is an entry of a test tar: a regular file, or a symlink (link)
// or hard link (hardlink).
type tarFile struct {
	name, data     string
	link, hardlink string
}

func tarOf(t *testing.T, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(f.data))}
		switch {
		case f.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, f.link, 0
		case f.hardlink != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, f.hardlink, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(f.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// appendTarFile returns the tar data with f added at the end.
func appendTarFile(t *testing.T, data []byte, f tarFile) []byte {
	t.Helper()
	var files []tarFile
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, tarFile{name: h.Name, data: string(body)})
	}
	return tarOf(t, append(files, f)...)
}

// fileIn returns the content of the entry name of a tar.
func fileIn(t *testing.T, data []byte, name string) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the tar: %v", name, err)
		}
		if h.Name == name {
			body, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return body
		}
	}
}

func TestTarEntriesOutsideTheArchiveAreRefused(t *testing.T) {
	layoutFiles := []tarFile{{name: "oci-layout", data: `{"imageLayoutVersion":"1.0.0"}`}, {name: "index.json", data: `{"schemaVersion":2,"manifests":[]}`}}
	for _, bad := range []string{"../x", "/etc/passwd", "blobs/../../x", "./../x", ".."} {
		t.Run(bad, func(t *testing.T) {
			data := tarOf(t, append(layoutFiles, tarFile{name: bad, data: "evil"})...)
			_, err := Open(bytes.NewReader(data), int64(len(data)))
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "name is outside the archive") {
				t.Errorf("Open: %v; want the entry refused", err)
			}
		})
	}
	// Names that stay inside once cleaned are fine.
	data := tarOf(t, append(layoutFiles, tarFile{name: "./blobs/../x", data: "ok"})...)
	if _, err := Open(bytes.NewReader(data), int64(len(data))); err != nil {
		t.Errorf("Open with ./blobs/../x: %v", err)
	}

	// A docker-archive's manifest.json cannot point outside either.
	for _, bad := range []string{"../../etc/passwd", "/etc/passwd"} {
		data := tarOf(t, tarFile{name: "manifest.json", data: `[{"Config":"` + bad + `","RepoTags":["x:1"],"Layers":[]}]`})
		_, err := Open(bytes.NewReader(data), int64(len(data)))
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), bad) {
			t.Errorf("manifest.json naming %s: %v", bad, err)
		}
	}
}

func TestLinksNeverLeadOutOfTheArchive(t *testing.T) {
	dir := t.TempDir()
	secret := []byte("secret outside the archive\n")
	if err := os.WriteFile(filepath.Join(dir, "secret"), secret, 0o644); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(secret)
	blob := blobPath(d)
	for _, link := range []tarFile{
		{name: blob, link: filepath.Join(dir, "secret")},
		{name: blob, link: "../../../secret"},
		{name: blob, link: "../../../../../../../../" + dir + "/secret"},
		{name: blob, hardlink: filepath.Join(dir, "secret")},
		{name: blob, hardlink: "../secret"},
	} {
		data := tarOf(t,
			tarFile{name: "oci-layout", data: `{"imageLayoutVersion":"1.0.0"}`},
			tarFile{name: "index.json", data: `{"schemaVersion":2,"manifests":[]}`},
			link)
		p := filepath.Join(dir, "sub", "archive.tar")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := OpenFile(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Fetch(context.Background(), ocispec.Descriptor{Digest: d, Size: int64(len(secret))})
		r.Close()
		if !errdefs.IsNotFound(err) {
			t.Errorf("link %+v: Fetch = %v; want not found", link, err)
		}
	}

	// A link to another entry of the archive serves that entry.
	data := tarOf(t,
		tarFile{name: "oci-layout", data: `{"imageLayoutVersion":"1.0.0"}`},
		tarFile{name: "index.json", data: `{"schemaVersion":2,"manifests":[]}`},
		tarFile{name: "real", data: string(secret)},
		tarFile{name: blob, link: "../../real"})
	rc, err := openBytes(t, data).Fetch(context.Background(), ocispec.Descriptor{Digest: d, Size: int64(len(secret))})
	if err != nil {
		t.Fatalf("link inside the archive: %v", err)
	}
	rc.Close()
}

func TestLayoutDirectorySymlinksCannotEscape(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	dir := filepath.Join(base, "layout")
	s := newMemStore()
	img := s.testImage(t, "linux/amd64", "layer")
	if err := WriteLayout(ctx, dir, s, []Image{{Name: "v1", Target: img}}); err != nil {
		t.Fatal(err)
	}
	// A layer replaced by a symlink to a file outside: not served.
	layer := digest.FromBytes(gzipped(t, layerTar(t, "file0", "layer")))
	outside := filepath.Join(base, "outside")
	if err := os.WriteFile(outside, s.blobs[layer], 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, blobPath(layer))
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, p); err != nil {
		t.Fatal(err)
	}
	r, err := OpenLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if rc, err := r.Fetch(ctx, ocispec.Descriptor{Digest: layer, Size: int64(len(s.blobs[layer]))}); err == nil {
		rc.Close()
		t.Error("served a blob through a symlink out of the layout")
	}

	// Writing into a layout whose blobs directory is a symlink out of it
	// writes nothing there.
	dir2 := filepath.Join(base, "layout2")
	victim := filepath.Join(base, "victim")
	for _, d := range []string{dir2, victim} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(victim, filepath.Join(dir2, "blobs")); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(ctx, dir2, s, []Image{{Target: img}}); err == nil {
		t.Error("WriteLayout through a symlinked blobs directory succeeded")
	}
	if left, _ := os.ReadDir(victim); len(left) != 0 {
		t.Errorf("WriteLayout wrote %d entries outside the layout", len(left))
	}
}
