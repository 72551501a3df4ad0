package main

import (
	"slices"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newUpdateCommand(a *app) *cobra.Command {
	var (
		memory    bytesValue
		cpus      cpusValue
		pidsLimit int64
		restart   restartValue
	)
	cmd := &cobra.Command{
		Use:   "update CONTAINER...",
		Short: "Change containers' resource limits or restart policy, printing each one",
		Long: `Change containers' resource limits or restart policy, printing each one
updated. The record changes, and so does a running task's cgroup.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := minArgs(1)(cmd, args); err != nil {
				return err
			}
			if !slices.ContainsFunc([]string{"memory", "cpus", "pids-limit", "restart"}, cmd.Flags().Changed) {
				return usagef("%q needs at least one of --memory, --cpus, --pids-limit, --restart", cmd.CommandPath())
			}
			return nil
		},
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := client.ContainerUpdate{
				Restart:   restart.value,
				Resources: client.Resources{MemoryBytes: int64(memory), CPUs: float64(cpus), PidsLimit: pidsLimit},
			}
			return removeEach(cmd, a, args, func(id string) error {
				ct, err := a.client.UpdateContainer(cmd.Context(), id, u)
				if err != nil {
					return err
				}
				if !isUp(ct.Status) || u.Resources == (client.Resources{}) {
					return nil
				}
				return a.client.UpdateTask(cmd.Context(), ct.ID, u.Resources)
			})
		},
	}
	fs := cmd.Flags()
	fs.VarP(&memory, "memory", "m", "memory limit (512m, 1g, ...)")
	fs.Var(&cpus, "cpus", "number of CPUs (1.5)")
	fs.Int64Var(&pidsLimit, "pids-limit", 0, "maximum number of processes (-1: unlimited)")
	fs.Var(&restart, "restart", "restart policy: no, always, unless-stopped, on-failure[:MAX]")
	return cmd
}
