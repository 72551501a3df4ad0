package archive

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/errdefs"
)

// WriteFile writes the archive file name through a temporary file in its
// directory, synced and renamed into place when write succeeds and removed
// otherwise: a failed write leaves no partial archive, and an existing one
// is replaced whole.
func WriteFile(name string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(name)
	if fi, err := os.Stat(name); err == nil && fi.IsDir() {
		return fmt.Errorf("archive %s: is a directory: %w", name, errdefs.ErrInvalidArgument)
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("archive %s: directory %s does not exist: %w", name, dir, errdefs.ErrNotFound)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	err = write(tmp)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
