package main

import (
	"fmt"
	"io"
	"math"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newDFCommand(a *app) *cobra.Command {
	var (
		out     output
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "df",
		Short: "Show what uses disk space: images, content and snapshots",
		Long: `Show what uses disk space in the namespace, like docker system df.

Content (blobs) and Snapshots (unpacked layers and container filesystems) are
what is on disk; Images is a view of the same bytes: what the images use, each
blob and snapshot counted once.

  TOTAL        images, blobs or snapshots
  ACTIVE       images: those with an active snapshot (a container's root
               filesystem) made on them; blobs and snapshots: those something
               references (an image, a lease or a berth.io/gc.root label)
  SIZE         bytes; a snapshot's own, without its parents
  RECLAIMABLE  what removing every image not in use, then berth system prune,
               would free; unreferenced blobs and snapshots are freed by the
               prune alone

-v adds each image's size, split into SHARED (bytes another image uses too)
and UNIQUE (bytes only it uses: what removing it alone frees), and splits the
content and snapshots by use: shared by images, unique to one, HELD (by a lease
or gc.root label, not by an image) and UNREFERENCED (freed by berth system
prune). A blob that another namespace holds too is counted in each.`,
		Args:        noArgs,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			du, err := a.client.DiskUsage(cmd.Context(), "")
			if err != nil {
				return err
			}
			if out.json() {
				return printJSON(cmd.OutOrStdout(), du)
			}
			return printDiskUsage(cmd.OutOrStdout(), du, verbose)
		},
	}
	out.addFormatFlag(cmd.Flags())
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show each image, and content and snapshots by use")
	return cmd
}

// printDiskUsage prints the summary table and, when verbose, the images and
// the split of content and snapshots by use.
func printDiskUsage(w io.Writer, du client.DiskUsage, verbose bool) error {
	store := func(typ string, u client.StoreUsage) []string {
		return []string{typ, fmt.Sprint(u.Total.Count), fmt.Sprint(u.Total.Count - u.Unreferenced.Count),
			humanSize(u.Total.Bytes), reclaimable(u.Reclaimable.Bytes, u.Total.Bytes)}
	}
	img := du.Images
	rows := [][]string{
		{"Images", fmt.Sprint(img.Total.Count), fmt.Sprint(img.InUse), humanSize(img.Total.Bytes), reclaimable(img.Reclaimable, img.Total.Bytes)},
		store("Content", du.Content),
		store("Snapshots", du.Snapshots),
	}
	if err := printTable(w, []string{"type", "total", "active", "size", "reclaimable"}, rows); err != nil || !verbose {
		return err
	}

	fmt.Fprintln(w, "\nImages space usage:")
	rows = rows[:0]
	for _, i := range img.Images {
		rows = append(rows, []string{i.Name, humanSize(i.Size), humanSize(i.Shared), humanSize(i.Unique),
			humanSize(i.Content.Bytes), humanSize(i.Snapshots.Bytes), fmt.Sprint(i.ActiveSnapshots)})
	}
	if err := printTable(w, []string{"name", "size", "shared", "unique", "content", "snapshots", "active"}, rows); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nContent and snapshots (%s) by use:\n", du.Snapshotter)
	byUse := func(typ string, u client.StoreUsage) []string {
		return []string{typ, humanSize(u.Shared.Bytes), humanSize(u.Unique.Bytes), humanSize(u.Held.Bytes), humanSize(u.Unreferenced.Bytes)}
	}
	return printTable(w, []string{"type", "shared", "unique", "held", "unreferenced"},
		[][]string{byUse("Content", du.Content), byUse("Snapshots", du.Snapshots)})
}

// reclaimable renders n bytes of total as "1.5 MiB (75%)".
func reclaimable(n, total int64) string {
	if total <= 0 {
		return humanSize(n)
	}
	return fmt.Sprintf("%s (%d%%)", humanSize(n), int(math.Round(100*float64(n)/float64(total))))
}
