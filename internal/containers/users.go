package containers

import (
	"context"
	"sync"

	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/oci"
)

// usersCacheSize bounds how many images' user files are kept.
const usersCacheSize = 64

// usersCache keeps the /etc/passwd and /etc/group of recently used images
// by top snapshot (which never changes), so that a container of an image
// seen before needs no mount of its root filesystem to resolve its user.
type usersCache struct {
	mu    sync.Mutex
	users map[string]*oci.ImageUsers
	order []string // keys, oldest first
}

func (c *usersCache) get(key string) (*oci.ImageUsers, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.users[key]
	return u, ok
}

func (c *usersCache) add(key string, u *oci.ImageUsers) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.users[key]; ok {
		return
	}
	if c.users == nil {
		c.users = map[string]*oci.ImageUsers{}
	}
	if len(c.order) == usersCacheSize {
		delete(c.users, c.order[0])
		c.order = c.order[1:]
	}
	c.users[key] = u
	c.order = append(c.order, key)
}

// imageUsers returns the user files of the image whose top snapshot is
// chainID, reading them through a temporary mount of a new container's
// snapshot (mounts) the first time.
func (s *Service) imageUsers(ctx context.Context, chainID string, mounts []mount.Mount) (*oci.ImageUsers, error) {
	key := s.opts.Snapshotter + "/" + chainID
	if u, ok := s.users.get(key); ok {
		return u, nil
	}
	var u *oci.ImageUsers
	err := mount.WithTempMount(ctx, mounts, func(root string) error {
		var err error
		u, err = oci.ReadImageUsers(root)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.users.add(key, u)
	return u, nil
}
