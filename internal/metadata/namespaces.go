package metadata

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/filters"
	"github.com/berth-dev/berth/internal/labels"
	"github.com/berth-dev/berth/internal/namespaces"
	bolt "go.etcd.io/bbolt"
)

// Namespace is a namespace record.
type Namespace struct {
	Name   string
	Labels map[string]string
}

// Field exposes name and labels.* to filters.
func (n Namespace) Field(fp []string) (string, bool) {
	if len(fp) == 1 && fp[0] == "name" {
		return n.Name, true
	}
	return filters.LabelsField(n.Labels, fp)
}

// CreateNamespace creates a namespace; ErrAlreadyExists if it exists.
func (m *DB) CreateNamespace(ctx context.Context, ns Namespace) (Namespace, error) {
	if err := namespaces.Validate(ns.Name); err != nil {
		return Namespace{}, err
	}
	if err := labels.ValidateAll(ns.Labels); err != nil {
		return Namespace{}, fmt.Errorf("namespace %q: %w", ns.Name, err)
	}
	err := m.db.Update(func(tx *bolt.Tx) error {
		if nsBucket(tx, ns.Name) != nil {
			return fmt.Errorf("namespace %q: %w", ns.Name, errdefs.ErrAlreadyExists)
		}
		b, err := m.createNSBucket(tx, ns.Name)
		if err != nil {
			return err
		}
		return writeLabels(b, ns.Labels)
	})
	return ns, err
}

// EnsureNamespace creates the namespace if it does not exist.
func (m *DB) EnsureNamespace(ctx context.Context, name string) error {
	if err := namespaces.Validate(name); err != nil {
		return err
	}
	return m.db.Update(func(tx *bolt.Tx) error {
		_, err := m.createNSBucket(tx, name)
		return err
	})
}

// GetNamespace returns one namespace.
func (m *DB) GetNamespace(ctx context.Context, name string) (Namespace, error) {
	var out Namespace
	err := m.db.View(func(tx *bolt.Tx) error {
		b := nsBucket(tx, name)
		if b == nil {
			return errNamespaceNotFound(name)
		}
		out = Namespace{Name: name, Labels: readLabels(b)}
		return nil
	})
	return out, err
}

// ListNamespaces returns the namespaces matching filterStrs, sorted by name.
func (m *DB) ListNamespaces(ctx context.Context, filterStrs ...string) ([]Namespace, error) {
	f, err := filters.Parse(filterStrs...)
	if err != nil {
		return nil, err
	}
	var out []Namespace
	err = m.db.View(func(tx *bolt.Tx) error {
		return namespacesBucket(tx).ForEachBucket(func(k []byte) error {
			ns := Namespace{Name: string(k), Labels: readLabels(nsBucket(tx, string(k)))}
			if f.Match(ns) {
				out = append(out, ns)
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// UpdateNamespace changes a namespace's labels as labels.Update describes.
func (m *DB) UpdateNamespace(ctx context.Context, ns Namespace, fieldpaths ...string) (Namespace, error) {
	var out Namespace
	err := m.db.Update(func(tx *bolt.Tx) error {
		b := nsBucket(tx, ns.Name)
		if b == nil {
			return errNamespaceNotFound(ns.Name)
		}
		updated, err := labels.Update(readLabels(b), ns.Labels, fieldpaths)
		if err != nil {
			return fmt.Errorf("namespace %q: %w", ns.Name, err)
		}
		if err := writeLabels(b, updated); err != nil {
			return err
		}
		out = Namespace{Name: ns.Name, Labels: updated}
		return nil
	})
	return out, err
}

// DeleteNamespace removes an empty namespace. It fails with
// ErrFailedPrecondition, saying what remains, while the namespace holds
// blobs, ingests, leases, images, containers or snapshots.
func (m *DB) DeleteNamespace(ctx context.Context, name string) error {
	return m.db.Update(func(tx *bolt.Tx) error {
		b := nsBucket(tx, name)
		if b == nil {
			return errNamespaceNotFound(name)
		}
		var held []string
		for _, c := range []struct {
			what string
			path [][]byte
		}{
			{"blobs", [][]byte{bucketContent, bucketBlob}},
			{"ingests", [][]byte{bucketContent, bucketIngest}},
			{"leases", [][]byte{bucketLeases}},
			{"images", [][]byte{bucketImages}},
			{"containers", [][]byte{bucketContainers}},
		} {
			if n := countKeys(bucketPath(b, c.path...)); n > 0 {
				held = append(held, fmt.Sprintf("%d %s", n, c.what))
			}
		}
		if sb := b.Bucket(bucketSnapshots); sb != nil {
			_ = sb.ForEachBucket(func(name []byte) error {
				if n := countKeys(sb.Bucket(name)); n > 0 {
					held = append(held, fmt.Sprintf("%d %s snapshots", n, name))
				}
				return nil
			})
		}
		if len(held) > 0 {
			return fmt.Errorf("namespace %q is not empty: it holds %s: %w", name, strings.Join(held, ", "), errdefs.ErrFailedPrecondition)
		}
		return namespacesBucket(tx).DeleteBucket([]byte(name))
	})
}

func countKeys(b *bolt.Bucket) int {
	if b == nil {
		return 0
	}
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}
