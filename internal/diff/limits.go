package diff

import (
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Default limits, used for the zero fields of Limits.
const (
	DefaultMaxBytes   = 64 << 30 // decompressed bytes of one layer
	DefaultMaxEntries = 4 << 20  // tar headers of one layer
	DefaultMaxNameLen = 255      // bytes of one path component (NAME_MAX)
	DefaultMaxPathLen = 4096     // bytes of an entry name, a link target or a resolved path (PATH_MAX)
)

// Limits bound what one layer may make Apply do. A zero field takes its
// default; a negative one is invalid. Exceeding a limit fails Apply with an
// ErrInvalidArgument error that names the limit.
type Limits struct {
	// MaxBytes bounds the decompressed size of the layer, and the total
	// size of the files it makes (a sparse file counts its holes). Apply
	// stops reading as soon as the stream passes it, so a decompression
	// bomb costs at most MaxBytes of work.
	MaxBytes int64
	// MaxEntries bounds the number of tar headers.
	MaxEntries int
	// MaxNameLen bounds each path component of entry names and hardlink
	// targets.
	MaxNameLen int
	// MaxPathLen bounds entry names, link targets and paths resolved
	// through symlinks, and so the depth of the tree a layer can build.
	// Like PATH_MAX, it counts a terminating NUL: names are shorter.
	MaxPathLen int
}

func (l Limits) withDefaults() (Limits, error) {
	if l.MaxBytes < 0 || l.MaxEntries < 0 || l.MaxNameLen < 0 || l.MaxPathLen < 0 {
		return l, fmt.Errorf("limits %+v: negative limit: %w", l, errdefs.ErrInvalidArgument)
	}
	if l.MaxBytes == 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxEntries == 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxNameLen == 0 {
		l.MaxNameLen = DefaultMaxNameLen
	}
	if l.MaxPathLen == 0 {
		l.MaxPathLen = DefaultMaxPathLen
	}
	return l, nil
}

// exceeded is the error for a layer that passes the limit called field.
func exceeded(what, field string, limit int64) error {
	return fmt.Errorf("%s: exceeds Limits.%s (%d): %w", what, field, limit, errdefs.ErrInvalidArgument)
}
