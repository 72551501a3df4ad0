package main

import (
	"fmt"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newInspectCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect CONTAINER...",
		Short: "Show containers' records as a JSON array",
		Long: `Show containers' records as a JSON array: configuration, runtime spec,
task status, last exit, restart count and network address. For images, use
'berth image inspect'.`,
		Args:        minArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			cts := []client.Container{}
			failed := false
			for _, id := range args {
				ct, err := a.client.GetContainer(cmd.Context(), id)
				if err != nil {
					fmt.Fprintf(a.stderr, "berth: %s\n", oneLine(err))
					failed = true
					continue
				}
				cts = append(cts, ct)
			}
			if err := printJSON(cmd.OutOrStdout(), cts); err != nil {
				return err
			}
			if failed {
				return errReported
			}
			return nil
		},
	}
}
