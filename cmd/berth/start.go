package main

import (
	"context"
	"errors"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newStartCommand(a *app) *cobra.Command {
	var attach, interactive bool
	cmd := &cobra.Command{
		Use:   "start CONTAINER...",
		Short: "Start containers, printing each one started",
		Long: `Start containers, printing each one started; a stopped container starts
again with a new task. With -a berth attaches to the container's output
(with -i also its stdin), forwards signals as run does and exits with the
container's exit status.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := minArgs(1)(cmd, args); err != nil {
				return err
			}
			if (attach || interactive) && len(args) > 1 {
				return usagef("-a and -i attach to one container, got %d", len(args))
			}
			return nil
		},
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if attach || interactive {
				return startAttached(cmd, a, args[0], interactive)
			}
			return removeEach(cmd, a, args, func(id string) error {
				ct, err := a.client.GetContainer(cmd.Context(), id)
				if err != nil {
					return err
				}
				return startTask(cmd.Context(), a.client, ct, true)
			})
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "print the container's output and exit with its status")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "attach stdin too (implies -a)")
	return cmd
}

// startTask brings a container's task to created (start false) or
// running: a container without a task gets one, a stopped task is
// replaced, a running or paused one is left alone.
func startTask(ctx context.Context, c *client.Client, ct client.Container, start bool) error {
	p, err := c.GetTask(ctx, ct.ID, "")
	switch {
	case errors.Is(err, client.ErrNotFound):
	case err != nil:
		return err
	case isUp(p.Status):
		return nil
	case p.Status == client.StatusCreated:
		if start {
			_, err = c.StartTask(ctx, ct.ID, "")
		}
		return err
	default:
		if _, err := c.DeleteTask(ctx, ct.ID, "", false); err != nil && !errors.Is(err, client.ErrNotFound) {
			return err
		}
	}
	_, err = c.CreateTask(ctx, ct.ID, start)
	return err
}

func startAttached(cmd *cobra.Command, a *app, id string, interactive bool) error {
	ct, err := a.client.GetContainer(cmd.Context(), id)
	if err != nil {
		return err
	}
	if err := startTask(cmd.Context(), a.client, ct, false); err != nil {
		return err
	}
	ctx := context.WithoutCancel(cmd.Context()) // signals are forwarded
	s := session{a: a, containerID: ct.ID, tty: ct.Config.TTY, stdin: interactive && ct.Config.Stdin, stdout: cmd.OutOrStdout()}
	code, err := s.run(ctx, func(ctx context.Context) error {
		if isUp(ct.Status) {
			return nil
		}
		_, err := a.client.StartTask(ctx, ct.ID, "")
		return err
	})
	if err != nil {
		return err
	}
	return exitWith(code)
}
