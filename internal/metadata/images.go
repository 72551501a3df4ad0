package metadata

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/filters"
	"github.com/berth-dev/berth/internal/labels"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketImages = []byte("images")
	bucketTarget = []byte("target")
	keyDigest    = []byte("digest")
	keyMediaType = []byte("mediatype")
	maxImageName = 4096
)

// Image is a name pointing at a manifest or index in the content store. An
// image is a garbage collection root: it keeps its target and everything
// the target references.
type Image struct {
	Name      string
	Target    ocispec.Descriptor
	Labels    map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Field exposes name, target.digest, target.mediatype and labels.* to filters.
func (img Image) Field(fp []string) (string, bool) {
	switch {
	case len(fp) == 1 && fp[0] == "name":
		return img.Name, true
	case len(fp) == 2 && fp[0] == "target" && fp[1] == "digest":
		return img.Target.Digest.String(), true
	case len(fp) == 2 && fp[0] == "target" && fp[1] == "mediatype":
		return img.Target.MediaType, true
	}
	return filters.LabelsField(img.Labels, fp)
}

func validateImage(img Image) error {
	if img.Name == "" || len(img.Name) > maxImageName {
		return fmt.Errorf("image name %q: must be 1 to %d bytes: %w", img.Name, maxImageName, errdefs.ErrInvalidArgument)
	}
	if err := content.ValidateDigest(img.Target.Digest); err != nil {
		return fmt.Errorf("image %q: target: %w", img.Name, err)
	}
	if img.Target.MediaType == "" {
		return fmt.Errorf("image %q: target has no media type: %w", img.Name, errdefs.ErrInvalidArgument)
	}
	if err := labels.ValidateAll(img.Labels); err != nil {
		return fmt.Errorf("image %q: %w", img.Name, err)
	}
	return nil
}

func readImage(b *bolt.Bucket, name string) Image {
	img := Image{Name: name, Labels: readLabels(b), CreatedAt: getTime(b, keyCreatedAt), UpdatedAt: getTime(b, keyUpdatedAt)}
	if t := b.Bucket(bucketTarget); t != nil {
		img.Target = ocispec.Descriptor{
			Digest:    digest.Digest(t.Get(keyDigest)),
			MediaType: string(t.Get(keyMediaType)),
			Size:      getInt(t, keySize),
		}
	}
	return img
}

func writeTarget(b *bolt.Bucket, desc ocispec.Descriptor) error {
	t, err := b.CreateBucketIfNotExists(bucketTarget)
	if err != nil {
		return err
	}
	if err := t.Put(keyDigest, []byte(desc.Digest)); err != nil {
		return err
	}
	if err := t.Put(keyMediaType, []byte(desc.MediaType)); err != nil {
		return err
	}
	return putInt(t, keySize, desc.Size)
}

// PutImage creates the image, or points an existing one at img.Target and
// replaces its labels (as a pull of an existing tag does), and returns it.
func (m *DB) PutImage(ctx context.Context, img Image) (Image, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return Image{}, err
	}
	if err := validateImage(img); err != nil {
		return Image{}, err
	}
	var out Image
	err = m.db.Update(func(tx *bolt.Tx) error {
		nsb, err := m.createNSBucket(tx, ns)
		if err != nil {
			return err
		}
		ib, err := createBucketPath(nsb, bucketImages)
		if err != nil {
			return err
		}
		b := ib.Bucket([]byte(img.Name))
		now := m.now()
		if b == nil {
			if b, err = ib.CreateBucket([]byte(img.Name)); err != nil {
				return err
			}
			if err := putTime(b, keyCreatedAt, now); err != nil {
				return err
			}
		}
		if err := putTime(b, keyUpdatedAt, now); err != nil {
			return err
		}
		if err := writeTarget(b, img.Target); err != nil {
			return err
		}
		if err := writeLabels(b, img.Labels); err != nil {
			return err
		}
		out = readImage(b, img.Name)
		return nil
	})
	if err == nil {
		m.gc.schedule() // the old target may now be garbage
	}
	return out, err
}

// GetImage returns one image.
func (m *DB) GetImage(ctx context.Context, name string) (Image, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return Image{}, err
	}
	var out Image
	err = m.db.View(func(tx *bolt.Tx) error {
		if nsBucket(tx, ns) == nil {
			return errNamespaceNotFound(ns)
		}
		b := bucketPath(nsBucket(tx, ns), bucketImages, []byte(name))
		if b == nil {
			return fmt.Errorf("image %q: %w", name, errdefs.ErrNotFound)
		}
		out = readImage(b, name)
		return nil
	})
	return out, err
}

// ListImages returns the images matching any of filterStrs (fields: name,
// target.digest, target.mediatype, labels.KEY), sorted by name.
func (m *DB) ListImages(ctx context.Context, filterStrs ...string) ([]Image, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return nil, err
	}
	f, err := filters.Parse(filterStrs...)
	if err != nil {
		return nil, err
	}
	var out []Image
	err = m.db.View(func(tx *bolt.Tx) error {
		if nsBucket(tx, ns) == nil {
			return errNamespaceNotFound(ns)
		}
		ib := bucketPath(nsBucket(tx, ns), bucketImages)
		if ib == nil {
			return nil
		}
		return ib.ForEachBucket(func(k []byte) error {
			img := readImage(ib.Bucket(k), string(k))
			if f.Match(img) {
				out = append(out, img)
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// UpdateImage changes the target ("target") and labels ("labels",
// "labels.KEY") of an existing image; no fieldpaths means both.
func (m *DB) UpdateImage(ctx context.Context, img Image, fieldpaths ...string) (Image, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return Image{}, err
	}
	var labelPaths []string
	setTarget := len(fieldpaths) == 0
	for _, fp := range fieldpaths {
		if fp == "target" {
			setTarget = true
		} else {
			labelPaths = append(labelPaths, fp)
		}
	}
	var out Image
	err = m.db.Update(func(tx *bolt.Tx) error {
		b := bucketPath(nsBucket(tx, ns), bucketImages, []byte(img.Name))
		if b == nil {
			return fmt.Errorf("image %q: %w", img.Name, errdefs.ErrNotFound)
		}
		cur := readImage(b, img.Name)
		if setTarget {
			cur.Target = img.Target
		}
		if len(fieldpaths) == 0 || len(labelPaths) > 0 {
			updated, err := labels.Update(cur.Labels, img.Labels, labelPaths)
			if err != nil {
				return fmt.Errorf("update image %q: %w", img.Name, err)
			}
			cur.Labels = updated
		}
		if err := validateImage(cur); err != nil {
			return err
		}
		if err := writeTarget(b, cur.Target); err != nil {
			return err
		}
		if err := writeLabels(b, cur.Labels); err != nil {
			return err
		}
		if err := putTime(b, keyUpdatedAt, m.now()); err != nil {
			return err
		}
		out = readImage(b, img.Name)
		return nil
	})
	if err == nil && setTarget {
		m.gc.schedule()
	}
	return out, err
}

// DeleteImage removes an image; with sync it then collects, so what only the
// image held is gone when it returns.
func (m *DB) DeleteImage(ctx context.Context, name string, sync bool) error {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return err
	}
	err = m.db.Update(func(tx *bolt.Tx) error {
		ib := bucketPath(nsBucket(tx, ns), bucketImages)
		if ib == nil || ib.Bucket([]byte(name)) == nil {
			return fmt.Errorf("image %q: %w", name, errdefs.ErrNotFound)
		}
		return ib.DeleteBucket([]byte(name))
	})
	if err != nil {
		return err
	}
	if sync {
		_, err = m.GarbageCollect(ctx)
		return err
	}
	m.gc.schedule()
	return nil
}

// RecordImage points the image name at target, creating it if needed and
// keeping the labels of an existing one (what a pull does).
func (m *DB) RecordImage(ctx context.Context, name string, target ocispec.Descriptor) error {
	img, err := m.GetImage(ctx, name)
	if errdefs.IsNotFound(err) {
		_, err = m.PutImage(ctx, Image{Name: name, Target: target})
		return err
	} else if err != nil {
		return err
	}
	if img.Target.Digest == target.Digest {
		return nil
	}
	_, err = m.UpdateImage(ctx, Image{Name: name, Target: target}, "target")
	return err
}
