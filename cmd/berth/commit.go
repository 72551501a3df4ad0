package main

import (
	"fmt"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newCommitCommand(a *app) *cobra.Command {
	var opts client.CommitOptions
	pause := true
	cmd := &cobra.Command{
		Use:   "commit [-m MESSAGE] [-a AUTHOR] CONTAINER IMAGE",
		Short: "Make an image of a container's changes",
		Long: `Make an image of a container's changes: the image the container was
created from, with one more layer holding what the container changed.
A running container is paused while its files are read (--pause=false
reads them live). Prints the new image's digest.`,
		Args:        exactArgs(2),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.NoPause = !pause
			dgst, err := a.client.Commit(cmd.Context(), args[0], args[1], opts)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), dgst)
			return err
		},
	}
	cmd.Flags().StringVarP(&opts.Message, "message", "m", "", "commit message, kept in the image's history")
	cmd.Flags().StringVarP(&opts.Author, "author", "a", "", "author, kept in the image's config and history")
	cmd.Flags().BoolVarP(&pause, "pause", "p", true, "pause the container while committing")
	return cmd
}
