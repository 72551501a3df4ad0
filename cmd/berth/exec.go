package main

import (
	"context"
	"fmt"
	"os"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newExecCommand(a *app) *cobra.Command {
	var (
		cfg              client.ExecConfig
		env              []string
		detach           bool
		interactive, tty bool
	)
	cmd := &cobra.Command{
		Use:   "exec [flags] CONTAINER COMMAND [ARG...]",
		Short: "Run a command in a running container",
		Long: `Run a command in a running container and exit with its exit status. As
with run, the signals berth receives are forwarded to the command unless
-it puts the terminal in raw mode.`,
		Args:        minArgs(2),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			ct, err := a.client.GetContainer(ctx, args[0])
			if err != nil {
				return err
			}
			if ct.Status != client.StatusRunning {
				return fmt.Errorf("container %s is not running (%s): %w", args[0], describeStatus(ct.Status), client.ErrFailedPrecondition)
			}
			if cfg.Env, err = resolveEnv(env, os.LookupEnv); err != nil {
				return err
			}
			cfg.Args, cfg.TTY, cfg.Stdin = args[1:], tty, interactive && !detach
			if tty {
				cfg.Width, cfg.Height = terminalSize(cmd.OutOrStdout(), a.stdin)
			}
			execID, err := a.client.Exec(ctx, ct.ID, cfg)
			if err != nil {
				return err
			}
			if detach {
				_, err := a.client.StartTask(ctx, ct.ID, execID)
				return err
			}
			ctx = context.WithoutCancel(ctx) // signals are forwarded
			s := session{a: a, containerID: ct.ID, execID: execID, tty: tty, stdin: cfg.Stdin, stdout: cmd.OutOrStdout()}
			code, err := s.run(ctx, func(ctx context.Context) error {
				_, err := a.client.StartTask(ctx, ct.ID, execID)
				return err
			})
			if err != nil {
				return err
			}
			if _, err := a.client.DeleteTask(ctx, ct.ID, execID, false); err != nil {
				return err
			}
			return exitWith(code)
		},
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.BoolVarP(&interactive, "interactive", "i", false, "keep stdin open")
	fs.BoolVarP(&tty, "tty", "t", false, "allocate a terminal")
	fs.BoolVarP(&detach, "detach", "d", false, "start the command and return at once")
	fs.StringArrayVarP(&env, "env", "e", nil, "set `KEY=VALUE` in the environment (KEY alone: its value here, if set)")
	fs.StringVarP(&cfg.User, "user", "u", "", "run as `USER[:GROUP]` (names or ids)")
	fs.StringVarP(&cfg.WorkingDir, "workdir", "w", "", "working directory of the command")
	return cmd
}

// describeStatus words a task status for messages.
func describeStatus(s client.Status) string {
	if s == "" {
		return "it has no task"
	}
	return "it is " + string(s)
}
