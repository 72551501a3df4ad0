package main

import (
	"fmt"
	"os/user"
	"strconv"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newTopCommand(a *app) *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:         "top CONTAINER",
		Short:       "List the processes of a container",
		Long:        "List the processes of a container as the host sees them: host PIDs, and user names from the host's user database.",
		Args:        exactArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			procs, err := a.client.TaskTop(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("top %s: %w", args[0], err)
			}
			return printList(cmd.OutOrStdout(), out, procs,
				func(p client.TopProcess) string { return strconv.FormatUint(uint64(p.PID), 10) },
				[]string{"pid", "user", "time", "cmd"},
				func(p client.TopProcess) []string {
					return []string{strconv.FormatUint(uint64(p.PID), 10), userName(p.UID), cpuTime(p.CPUTime), p.Command}
				})
		},
	}
	out.addListFlags(cmd.Flags(), "pid")
	return cmd
}

// userName is the host's name for uid, or the number.
func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username
	}
	return id
}

// cpuTime renders CPU time as ps does: "00:01:05", "2-03:00:00".
func cpuTime(d time.Duration) string {
	s := int64(d / time.Second)
	hms := fmt.Sprintf("%02d:%02d:%02d", s/3600%24, s/60%60, s%60)
	if days := s / 86400; days > 0 {
		return fmt.Sprintf("%d-%s", days, hms)
	}
	return hms
}
