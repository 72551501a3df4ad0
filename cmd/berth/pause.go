package main

import "github.com/spf13/cobra"

func newPauseCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:         "pause CONTAINER...",
		Short:       "Freeze every process of containers, printing each one paused",
		Args:        minArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return removeEach(cmd, a, args, func(id string) error {
				return a.client.PauseTask(cmd.Context(), id)
			})
		},
	}
}

func newUnpauseCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:         "unpause CONTAINER...",
		Short:       "Thaw paused containers, printing each one",
		Args:        minArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return removeEach(cmd, a, args, func(id string) error {
				return a.client.ResumeTask(cmd.Context(), id)
			})
		},
	}
}
