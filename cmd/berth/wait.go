package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newWaitCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:         "wait CONTAINER...",
		Short:       "Wait for containers to exit and print their exit statuses",
		Args:        minArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			failed := false
			for _, id := range args {
				code, err := waitContainer(cmd.Context(), a.client, id)
				if err != nil {
					fmt.Fprintf(a.stderr, "berth: %s\n", oneLine(err))
					failed = true
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), code)
			}
			if failed {
				return errReported
			}
			return nil
		},
	}
}

// waitContainer waits for a container's init to exit and returns its
// status; a container whose task is gone answers with its last exit.
func waitContainer(ctx context.Context, c *client.Client, id string) (int32, error) {
	p, err := c.WaitTask(ctx, id, "")
	if err == nil {
		return p.ExitStatus, nil
	}
	if !errors.Is(err, client.ErrNotFound) {
		return 0, err
	}
	ct, cerr := c.GetContainer(ctx, id)
	if cerr != nil {
		return 0, cerr
	}
	if !known(ct.ExitedAt) {
		return 0, fmt.Errorf("container %s has never run: %w", id, client.ErrFailedPrecondition)
	}
	return ct.ExitStatus, nil
}
