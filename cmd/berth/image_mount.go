package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/spf13/cobra"
)

// mountKey is the snapshot key of the view `image mount` makes at dir.
func mountKey(dir string) string { return "image-mount:" + dir }

func newImageMountCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "mount IMAGE DIR",
		Short: "Mount an image's root filesystem read-only at DIR, for inspection",
		Long: `Mount an image's root filesystem read-only at DIR, for inspection.

The mount is made on this host, so berth must run as root next to berthd.
It stays until 'berth image unmount DIR'; the image's data is kept meanwhile.`,
		Args:        exactArgs(2),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			img, err := a.client.GetImage(ctx, args[0])
			if err != nil {
				return err
			}
			if img.Snapshot == "" {
				return fmt.Errorf("image %s has no unpacked root filesystem for %s: pull it first", img.Name, img.Platform)
			}
			dir, err := filepath.Abs(args[1])
			if err != nil {
				return err
			}
			sn := a.client.Snapshots("")
			mounts, err := sn.View(ctx, mountKey(dir), img.Snapshot, map[string]string{client.LabelGCRoot: "berth image mount"})
			if errors.Is(err, client.ErrAlreadyExists) {
				return fmt.Errorf("%s is already an image mount: run 'berth image unmount %s' first", dir, dir)
			} else if err != nil {
				return err
			}
			ms := make([]mount.Mount, 0, len(mounts))
			for _, m := range mounts {
				ms = append(ms, mount.Mount{Type: m.Type, Source: m.Source, Options: m.Options})
			}
			if err := mount.All(ms, dir); err != nil {
				_ = sn.Remove(ctx, mountKey(dir))
				return fmt.Errorf("mount %s at %s: %w", img.Name, dir, err)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), dir)
			return err
		},
	}
}

func newImageUnmountCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:         "unmount DIR",
		Aliases:     []string{"umount"},
		Short:       "Undo 'berth image mount' at DIR",
		Args:        exactArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			if err := mount.UnmountAll(dir); err != nil {
				return fmt.Errorf("unmount %s: %w", dir, err)
			}
			if err := a.client.Snapshots("").Remove(cmd.Context(), mountKey(dir)); err != nil {
				if errors.Is(err, client.ErrNotFound) {
					return fmt.Errorf("%s is not an image mount", dir)
				}
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), dir)
			return err
		},
	}
}
