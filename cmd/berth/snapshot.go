package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newSnapshotCommand(a *app) *cobra.Command {
	var snapshotter string
	sn := func() *client.Snapshots { return a.client.Snapshots(snapshotter) }
	cmd := group(&cobra.Command{
		Use:     "snapshot",
		Aliases: []string{"snapshots"},
		Short:   "Inspect and remove snapshots",
		Long: `Inspect and remove snapshots: the filesystem trees images are unpacked into.

A committed snapshot is named; image layers are committed under their chainID,
so images with the same layers share them. An active snapshot (kind active or
view) has a key instead; commands take either.`,
	})
	cmd.PersistentFlags().StringVar(&snapshotter, "snapshotter", "", "use snapshotter `NAME` (default: the daemon's, see berth info)")
	cmd.AddCommand(
		newSnapshotListCommand(a, sn),
		newSnapshotInfoCommand(a, sn),
		newSnapshotRemoveCommand(a, sn),
		newSnapshotUsageCommand(a, sn),
		newSnapshotMountsCommand(a, sn),
		newSnapshotLabelCommand(a, sn),
	)
	return cmd
}

func newSnapshotListCommand(a *app, sn func() *client.Snapshots) *cobra.Command {
	var (
		out     output
		filters []string
	)
	cmd := &cobra.Command{
		Use:         "ls",
		Aliases:     []string{"list"},
		Short:       "List snapshots",
		Args:        noArgs,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			snaps, err := sn().List(cmd.Context(), filters...)
			if err != nil {
				return err
			}
			return printSnapshots(cmd.OutOrStdout(), out, time.Now(), snaps)
		},
	}
	out.addListFlags(cmd.Flags(), "name")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "list only snapshots matching `FILTER` (fields name, parent, kind, labels.KEY; repeatable, any may match)")
	return cmd
}

func printSnapshots(w io.Writer, out output, now time.Time, snaps []client.Snapshot) error {
	return printList(w, out, snaps,
		func(s client.Snapshot) string { return s.Name },
		[]string{"name", "parent", "kind", "created"},
		func(s client.Snapshot) []string {
			return []string{s.Name, s.Parent, string(s.Kind), relativeTime(now, s.CreatedAt)}
		})
}

func newSnapshotInfoCommand(a *app, sn func() *client.Snapshots) *cobra.Command {
	return &cobra.Command{
		Use:         "info NAME",
		Short:       "Show a snapshot as JSON",
		Args:        exactArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sn().Stat(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), s)
		},
	}
}

func newSnapshotRemoveCommand(a *app, sn func() *client.Snapshots) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove snapshots and their files, printing each name removed",
		Long: `Remove snapshots and their files, printing each name removed.

A snapshot that is the parent of another is refused: remove the children
first. A snapshot an image uses is unpacked again by the next pull of the
image; removing the image (berth rmi) removes its snapshots too.`,
		Args:        minArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return removeEach(cmd, a, args, func(name string) error {
				return sn().Remove(cmd.Context(), name)
			})
		},
	}
}

// snapshotUsage is one row of `snapshot usage`.
type snapshotUsage struct {
	Name string `json:"name"`
	client.SnapshotUsage
}

func newSnapshotUsageCommand(a *app, sn func() *client.Snapshots) *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "usage [NAME...]",
		Short: "Show the disk space of snapshots, each without its parents",
		Long: `Show the disk space of snapshots (all of them without NAME), each without its
parents: a committed snapshot's size was measured when it was committed, an
active one's is measured now by walking its files. See berth df for totals.`,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			names, all := args, len(args) == 0
			if all {
				snaps, err := sn().List(ctx)
				if err != nil {
					return err
				}
				for _, s := range snaps {
					names = append(names, s.Name)
				}
			}
			rows := make([]snapshotUsage, 0, len(names))
			for _, name := range names {
				u, err := sn().Usage(ctx, name)
				if all && errors.Is(err, client.ErrNotFound) {
					continue // removed since the listing
				} else if err != nil {
					return err
				}
				rows = append(rows, snapshotUsage{Name: name, SnapshotUsage: u})
			}
			return printSnapshotUsage(cmd.OutOrStdout(), out, rows)
		},
	}
	out.addFormatFlag(cmd.Flags())
	return cmd
}

func printSnapshotUsage(w io.Writer, out output, rows []snapshotUsage) error {
	return printList(w, out, rows,
		func(u snapshotUsage) string { return u.Name },
		[]string{"name", "size", "inodes"},
		func(u snapshotUsage) []string {
			return []string{u.Name, humanSize(u.Size), fmt.Sprint(u.Inodes)}
		})
}

func newSnapshotMountsCommand(a *app, sn func() *client.Snapshots) *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "mounts KEY [TARGET]",
		Short: "Print the mount commands that show an active snapshot",
		Long: `Print the mount commands that show an active snapshot, one per line:
mount -t TYPE SOURCE -o OPTIONS [TARGET]. Run them as root to see the files
(only while no one else writes the snapshot); committed snapshots have no
mounts of their own: look at an active snapshot made on them.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usagef("%q requires a key and optionally a target, got %s", cmd.CommandPath(), arguments(len(args)))
			}
			return nil
		},
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			mounts, err := sn().Mounts(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if out.json() {
				return printJSON(cmd.OutOrStdout(), mounts)
			}
			target := ""
			if len(args) == 2 {
				target = args[1]
			}
			for _, m := range mounts {
				if _, err := fmt.Fprintln(cmd.OutOrStdout(), mountCommand(m, target)); err != nil {
					return err
				}
			}
			return nil
		},
	}
	out.addFormatFlag(cmd.Flags())
	return cmd
}

// mountCommand renders m as a mount(8) command line, quoted for a POSIX
// shell: "mount -t overlay overlay -o lowerdir=/a:/b,upperdir=/c,workdir=/d /mnt".
func mountCommand(m client.Mount, target string) string {
	args := []string{"mount", "-t", shellQuote(m.Type), shellQuote(m.Source)}
	if len(m.Options) > 0 {
		args = append(args, "-o", shellQuote(strings.Join(m.Options, ",")))
	}
	if target != "" {
		args = append(args, shellQuote(target))
	}
	return strings.Join(args, " ")
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// characters that are safe unquoted.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,=+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func newSnapshotLabelCommand(a *app, sn func() *client.Snapshots) *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:         "label NAME KEY=VALUE...",
		Short:       "Set or remove (KEY=) labels of a snapshot and print its labels",
		Args:        labelArgs,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			labels, err := parseLabels(args[1:], true)
			if err != nil {
				return err
			}
			s, err := sn().SetLabels(cmd.Context(), args[0], labels)
			if err != nil {
				return err
			}
			if out.json() {
				return printJSON(cmd.OutOrStdout(), s)
			}
			return printLabels(cmd.OutOrStdout(), s.Labels)
		},
	}
	out.addFormatFlag(cmd.Flags())
	return cmd
}
