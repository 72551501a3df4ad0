package main

import (
	"fmt"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newSystemCommand(a *app) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "system",
		Short: "Manage berthd as a whole",
	})
	cmd.AddCommand(newSystemPruneCommand(a))
	return cmd
}

func newSystemPruneCommand(a *app) *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Run a garbage collection now and report what it freed",
		Long: `Run a garbage collection now and report what it freed: blobs no namespace
holds, expired leases and stale ingests.`,
		Args:        noArgs,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			stats, err := a.client.GarbageCollect(cmd.Context())
			if err != nil {
				return err
			}
			if out.json() {
				return printJSON(cmd.OutOrStdout(), stats)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), pruneSummary(stats))
			return err
		},
	}
	out.addFormatFlag(cmd.Flags())
	return cmd
}

// pruneSummary renders stats as
// "Removed 3 blobs (1.2 MiB), 1 expired lease, 0 stale ingests".
func pruneSummary(s client.GCStats) string {
	return fmt.Sprintf("Removed %s (%s), %s, %s", plural(s.BlobsRemoved, "blob"), humanSize(s.BytesFreed),
		plural(s.LeasesExpired, "expired lease"), plural(s.IngestsRemoved, "stale ingest"))
}
