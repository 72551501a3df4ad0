package main

import "github.com/spf13/cobra"

func newRmCommand(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm CONTAINER...",
		Aliases: []string{"remove"},
		Short:   "Remove containers, printing each one removed",
		Long: `Remove containers with their snapshots and logs, printing each one
removed. A running container is refused unless --force, which kills it
first.`,
		Args:        minArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return removeEach(cmd, a, args, func(id string) error {
				return a.client.DeleteContainer(cmd.Context(), id, force)
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill and remove running containers")
	return cmd
}
