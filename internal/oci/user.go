package oci

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// maxID is the largest uid or gid accepted. The kernel allows up to
// 4294967294, but github.com/moby/sys/user, and so Docker and containerd,
// stop at 2147483647 for 32-bit compatibility; berth does the same.
const maxID = 1<<31 - 1

// ValidateUser checks a --user value without looking anything up: NAME,
// UID, NAME:GROUP, UID:GID or a mix, where UID and GID are 0 to 2147483647.
func ValidateUser(s string) error {
	if err := validateUser(s); err != nil {
		return fmt.Errorf("--user %q: %w", s, err)
	}
	return nil
}

func validateUser(s string) error {
	if len(s) > 256 {
		return fmt.Errorf("longer than 256 bytes: %w", errdefs.ErrInvalidArgument)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return fmt.Errorf("contains a space or control character: %w", errdefs.ErrInvalidArgument)
	}
	parts := strings.Split(s, ":")
	if len(parts) > 2 {
		return fmt.Errorf("want USER[:GROUP]: %w", errdefs.ErrInvalidArgument)
	}
	for i, p := range parts {
		what := [2]string{"user", "group"}[i]
		if p == "" {
			return fmt.Errorf("empty %s: %w", what, errdefs.ErrInvalidArgument)
		}
		if strings.TrimLeft(strings.TrimPrefix(p, "-"), "0123456789") != "" {
			continue // a name
		}
		id, err := strconv.ParseInt(p, 10, 64)
		if err != nil || id < 0 || id > maxID {
			return fmt.Errorf("%s id %s out of range 0-%d: %w", what, p, maxID, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// ImageUsers are an image's /etc/passwd and /etc/group, from
// ReadImageUsers; a nil file is one the image lacks. They never change for
// a given image, so a caller may keep them to resolve users of later
// containers of the image without mounting it again.
type ImageUsers struct{ Passwd, Group []byte }

// ReadImageUsers reads /etc/passwd and /etc/group from the root filesystem
// mounted at rootfs, never leaving it (see readInRoot). With rootfs "" it
// returns nil: only numeric ids then resolve.
func ReadImageUsers(rootfs string) (*ImageUsers, error) {
	if rootfs == "" {
		return nil, nil
	}
	u := &ImageUsers{}
	for _, f := range []struct {
		name string
		data *[]byte
	}{{"etc/passwd", &u.Passwd}, {"etc/group", &u.Group}} {
		data, err := readInRoot(rootfs, f.name)
		if err != nil {
			return nil, fmt.Errorf("image /%s: %w: %w", f.name, err, errdefs.ErrInvalidArgument)
		}
		*f.data = data
	}
	return u, nil
}

// resolveUser resolves spec in the root filesystem at rootfs; see
// ImageUsers.resolve.
func resolveUser(rootfs, spec string) (specs.User, string, error) {
	users, err := ReadImageUsers(rootfs)
	if err != nil {
		return specs.User{}, "", err
	}
	return users.resolve(spec)
}

// resolve looks spec ("" means root) up in the image's /etc/passwd and
// /etc/group, as runc's exec-user semantics do: a name must exist; a
// numeric uid need not, but when it has a passwd entry that entry gives the
// primary group and home. Without an explicit group, the supplementary
// groups are those listing the user by name. It returns the spec user and
// the home directory ("/" when none). With iu nil, only numeric ids resolve.
func (iu *ImageUsers) resolve(spec string) (specs.User, string, error) {
	var passwd, group io.Reader
	if iu != nil {
		if iu.Passwd != nil {
			passwd = bytes.NewReader(iu.Passwd)
		}
		if iu.Group != nil {
			group = bytes.NewReader(iu.Group)
		}
	}
	eu, err := user.GetExecUser(spec, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		return specs.User{}, "", fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	inRange := func(id int) bool { return id >= 0 && id <= maxID }
	if !inRange(eu.Uid) || !inRange(eu.Gid) {
		return specs.User{}, "", fmt.Errorf("resolves to uid %d, gid %d, outside 0-%d: %w", eu.Uid, eu.Gid, maxID, errdefs.ErrInvalidArgument)
	}
	u := specs.User{UID: uint32(eu.Uid), GID: uint32(eu.Gid)}
	for _, g := range eu.Sgids {
		if !inRange(g) {
			return specs.User{}, "", fmt.Errorf("supplementary group %d outside 0-%d: %w", g, maxID, errdefs.ErrInvalidArgument)
		}
		if !slices.Contains(u.AdditionalGids, uint32(g)) {
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
	}
	slices.Sort(u.AdditionalGids)
	home := eu.Home
	if home == "" || strings.ContainsRune(home, 0) {
		home = "/"
	}
	return u, home, nil
}
