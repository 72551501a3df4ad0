package metadata

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/filters"
	"github.com/berth-dev/berth/internal/labels"
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketContainers     = []byte("containers")
	bucketContainerNames = []byte("containernames")
	keyName              = []byte("name")
	keyImage             = []byte("image")
	keyImageDigest       = []byte("imagedigest")
	keySnapshotter       = []byte("snapshotter")
	keySnapshotKey       = []byte("snapshotkey")
	keySpec              = []byte("spec")
	keyRuntime           = []byte("runtime")
	keyConfig            = []byte("config")
	keyLogPath           = []byte("logpath")
	keyExitStatus        = []byte("exitstatus")
	keyExitedAt          = []byte("exitedat")
	keyExitReason        = []byte("exitreason")
	keyRestartCount      = []byte("restartcount")
	keyStoppedByUser     = []byte("stoppedbyuser")

	validContainerID   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	validContainerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
)

// Container is a container record: what a task runs from. Spec and Config are
// opaque here (the OCI spec JSON and the creation options as package
// containers encodes them). The Exit fields describe the last exit of the
// container's init; RestartCount and StoppedByUser serve restart policies.
// A container is a garbage collection root that keeps its snapshot.
type Container struct {
	ID          string
	Name        string
	Image       string
	ImageDigest digest.Digest
	Snapshotter string
	SnapshotKey string
	Spec        []byte
	Runtime     string
	Config      []byte
	LogPath     string
	Labels      map[string]string
	CreatedAt   time.Time
	UpdatedAt   time.Time

	ExitStatus    int32
	ExitedAt      time.Time
	ExitReason    string
	RestartCount  uint32
	StoppedByUser bool
}

// Field exposes id, name, image, runtime and labels.* to filters.
func (c Container) Field(fp []string) (string, bool) {
	if len(fp) == 1 {
		switch fp[0] {
		case "id":
			return c.ID, true
		case "name":
			return c.Name, true
		case "image":
			return c.Image, true
		case "runtime":
			return c.Runtime, true
		}
	}
	return filters.LabelsField(c.Labels, fp)
}

func validateContainer(c Container) error {
	if !validContainerID.MatchString(c.ID) {
		return fmt.Errorf("container id %q: want 1 to 128 of [A-Za-z0-9_.-], not starting with . _ or -: %w", c.ID, errdefs.ErrInvalidArgument)
	}
	if c.Name != "" && !validContainerName.MatchString(c.Name) {
		return fmt.Errorf("container name %q: want 1 to 128 of [A-Za-z0-9_.-], not starting with . _ or -: %w", c.Name, errdefs.ErrInvalidArgument)
	}
	if c.Snapshotter == "" || c.SnapshotKey == "" {
		return fmt.Errorf("container %q: no snapshot: %w", c.ID, errdefs.ErrInvalidArgument)
	}
	if len(c.Spec) == 0 {
		return fmt.Errorf("container %q: no spec: %w", c.ID, errdefs.ErrInvalidArgument)
	}
	return labels.ValidateAll(c.Labels)
}

func readContainer(b *bolt.Bucket, id string) Container {
	return Container{
		ID:            id,
		Name:          string(b.Get(keyName)),
		Image:         string(b.Get(keyImage)),
		ImageDigest:   digest.Digest(b.Get(keyImageDigest)),
		Snapshotter:   string(b.Get(keySnapshotter)),
		SnapshotKey:   string(b.Get(keySnapshotKey)),
		Spec:          append([]byte(nil), b.Get(keySpec)...),
		Runtime:       string(b.Get(keyRuntime)),
		Config:        append([]byte(nil), b.Get(keyConfig)...),
		LogPath:       string(b.Get(keyLogPath)),
		Labels:        readLabels(b),
		CreatedAt:     getTime(b, keyCreatedAt),
		UpdatedAt:     getTime(b, keyUpdatedAt),
		ExitStatus:    int32(getInt(b, keyExitStatus)),
		ExitedAt:      getTime(b, keyExitedAt),
		ExitReason:    string(b.Get(keyExitReason)),
		RestartCount:  uint32(getInt(b, keyRestartCount)),
		StoppedByUser: b.Get(keyStoppedByUser) != nil,
	}
}

func writeContainer(b *bolt.Bucket, c Container) error {
	for k, v := range map[string]string{
		string(keyName): c.Name, string(keyImage): c.Image, string(keyImageDigest): string(c.ImageDigest),
		string(keySnapshotter): c.Snapshotter, string(keySnapshotKey): c.SnapshotKey, string(keySpec): string(c.Spec),
		string(keyRuntime): c.Runtime, string(keyConfig): string(c.Config), string(keyLogPath): c.LogPath,
		string(keyExitReason): c.ExitReason,
	} {
		if err := putOrDelete(b, []byte(k), []byte(v)); err != nil {
			return err
		}
	}
	if err := putInt(b, keyExitStatus, int64(c.ExitStatus)); err != nil {
		return err
	}
	if err := putInt(b, keyRestartCount, int64(c.RestartCount)); err != nil {
		return err
	}
	if err := putOrDelete(b, keyStoppedByUser, boolValue(c.StoppedByUser)); err != nil {
		return err
	}
	if c.ExitedAt.IsZero() {
		if err := b.Delete(keyExitedAt); err != nil {
			return err
		}
	} else if err := putTime(b, keyExitedAt, c.ExitedAt); err != nil {
		return err
	}
	return writeLabels(b, c.Labels)
}

func boolValue(v bool) []byte {
	if v {
		return []byte{1}
	}
	return nil
}

func putOrDelete(b *bolt.Bucket, key, value []byte) error {
	if len(value) == 0 {
		return b.Delete(key)
	}
	return b.Put(key, value)
}

// CreateContainer records a new container. Its id and its name (when set)
// must be unused in the namespace (ErrAlreadyExists).
func (m *DB) CreateContainer(ctx context.Context, c Container) (Container, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return Container{}, err
	}
	if err := validateContainer(c); err != nil {
		return Container{}, err
	}
	var out Container
	err = m.db.Update(func(tx *bolt.Tx) error {
		nsb, err := m.createNSBucket(tx, ns)
		if err != nil {
			return err
		}
		cb, err := createBucketPath(nsb, bucketContainers)
		if err != nil {
			return err
		}
		if cb.Bucket([]byte(c.ID)) != nil {
			return fmt.Errorf("container %q: %w", c.ID, errdefs.ErrAlreadyExists)
		}
		if c.Name != "" {
			names, err := createBucketPath(nsb, bucketContainerNames)
			if err != nil {
				return err
			}
			if owner := names.Get([]byte(c.Name)); owner != nil {
				return fmt.Errorf("container name %q is in use by container %s: %w", c.Name, owner, errdefs.ErrAlreadyExists)
			}
			if err := names.Put([]byte(c.Name), []byte(c.ID)); err != nil {
				return err
			}
		}
		b, err := cb.CreateBucket([]byte(c.ID))
		if err != nil {
			return err
		}
		now := m.now()
		if err := putTime(b, keyCreatedAt, now); err != nil {
			return err
		}
		if err := putTime(b, keyUpdatedAt, now); err != nil {
			return err
		}
		if err := writeContainer(b, c); err != nil {
			return err
		}
		out = readContainer(b, c.ID)
		return nil
	})
	return out, err
}

// GetContainer finds a container by id, name, or unique id prefix (as the
// CLI accepts them). An ambiguous prefix is ErrInvalidArgument.
func (m *DB) GetContainer(ctx context.Context, ref string) (Container, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return Container{}, err
	}
	var out Container
	err = m.db.View(func(tx *bolt.Tx) error {
		nsb := nsBucket(tx, ns)
		if nsb == nil {
			return errNamespaceNotFound(ns)
		}
		id, err := resolveContainer(nsb, ref)
		if err != nil {
			return err
		}
		out = readContainer(bucketPath(nsb, bucketContainers, []byte(id)), id)
		return nil
	})
	return out, err
}

// resolveContainer turns an id, name or unique id prefix into an id.
func resolveContainer(nsb *bolt.Bucket, ref string) (string, error) {
	cb := bucketPath(nsb, bucketContainers)
	notFound := fmt.Errorf("no such container: %s: %w", ref, errdefs.ErrNotFound)
	if cb == nil || ref == "" {
		return "", notFound
	}
	if cb.Bucket([]byte(ref)) != nil {
		return ref, nil
	}
	if names := bucketPath(nsb, bucketContainerNames); names != nil {
		if id := names.Get([]byte(ref)); id != nil {
			return string(id), nil
		}
	}
	var matches []string
	c := cb.Cursor()
	for k, _ := c.Seek([]byte(ref)); k != nil && strings.HasPrefix(string(k), ref); k, _ = c.Next() {
		matches = append(matches, string(k))
	}
	switch len(matches) {
	case 0:
		return "", notFound
	case 1:
		return matches[0], nil
	}
	return "", fmt.Errorf("container id prefix %q matches %d containers: %w", ref, len(matches), errdefs.ErrInvalidArgument)
}

// ListContainers returns the containers matching any of filterStrs (fields:
// id, name, image, runtime, labels.KEY), oldest first.
func (m *DB) ListContainers(ctx context.Context, filterStrs ...string) ([]Container, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return nil, err
	}
	f, err := filters.Parse(filterStrs...)
	if err != nil {
		return nil, err
	}
	var out []Container
	err = m.db.View(func(tx *bolt.Tx) error {
		nsb := nsBucket(tx, ns)
		if nsb == nil {
			return errNamespaceNotFound(ns)
		}
		cb := bucketPath(nsb, bucketContainers)
		if cb == nil {
			return nil
		}
		return cb.ForEachBucket(func(k []byte) error {
			c := readContainer(cb.Bucket(k), string(k))
			if f.Match(c) {
				out = append(out, c)
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}

// UpdateContainer reads the container id, lets fn change it and writes it
// back, in one transaction. The id, name, snapshot and creation time cannot
// change.
func (m *DB) UpdateContainer(ctx context.Context, id string, fn func(*Container) error) (Container, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return Container{}, err
	}
	var out Container
	err = m.db.Update(func(tx *bolt.Tx) error {
		b := bucketPath(nsBucket(tx, ns), bucketContainers, []byte(id))
		if b == nil {
			return fmt.Errorf("no such container: %s: %w", id, errdefs.ErrNotFound)
		}
		cur := readContainer(b, id)
		next := cur
		next.Labels = maps.Clone(cur.Labels)
		if err := fn(&next); err != nil {
			return err
		}
		if next.ID != cur.ID || next.Name != cur.Name || next.SnapshotKey != cur.SnapshotKey || next.Snapshotter != cur.Snapshotter {
			return fmt.Errorf("update container %q: id, name and snapshot cannot change: %w", id, errdefs.ErrInvalidArgument)
		}
		if err := validateContainer(next); err != nil {
			return err
		}
		if err := writeContainer(b, next); err != nil {
			return err
		}
		if err := putTime(b, keyUpdatedAt, m.now()); err != nil {
			return err
		}
		out = readContainer(b, id)
		return nil
	})
	return out, err
}

// DeleteContainer removes the record, frees its name and, in the same
// transaction, removes the record of its snapshot when that is an active
// snapshot (its root filesystem) nothing is based on; the backend's copy
// goes in the background. A committed snapshot, or one another snapshot
// is based on, stays, and is garbage unless something else holds it.
func (m *DB) DeleteContainer(ctx context.Context, id string) error {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return err
	}
	var snapshotter, backendKey string
	err = m.db.Update(func(tx *bolt.Tx) error {
		nsb := nsBucket(tx, ns)
		b := bucketPath(nsb, bucketContainers, []byte(id))
		if b == nil {
			return fmt.Errorf("no such container: %s: %w", id, errdefs.ErrNotFound)
		}
		if name := b.Get(keyName); len(name) > 0 {
			if names := bucketPath(nsb, bucketContainerNames); names != nil {
				if err := names.Delete(name); err != nil {
					return err
				}
			}
		}
		snapshotter = string(b.Get(keySnapshotter))
		snaps := bucketPath(nsb, bucketSnapshots, []byte(snapshotter))
		key := string(b.Get(keySnapshotKey))
		if sb := bucketPath(snaps, []byte(key)); sb != nil && readSnapshot(sb, key).info.Kind == snapshots.KindActive && childOf(snaps, key) == "" {
			backendKey = string(sb.Get(keyBackend))
			if err := snaps.DeleteBucket([]byte(key)); err != nil {
				return err
			}
		}
		return bucketPath(nsb, bucketContainers).DeleteBucket([]byte(id))
	})
	if err != nil {
		return err
	}
	if backend := m.opts.Snapshotters[snapshotter]; backend != nil && backendKey != "" {
		m.removeBackendLater(ctx, backend, backendKey)
	}
	m.gc.schedule()
	return nil
}
