package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newInfoCommand(a *app) *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:         "info",
		Short:       "Show what berthd says of itself",
		Args:        noArgs,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, err := a.client.Server(cmd.Context())
			if err != nil {
				return err
			}
			if out.json() {
				return printJSON(cmd.OutOrStdout(), info)
			}
			return printInfo(cmd.OutOrStdout(), time.Now(), info)
		},
	}
	out.addFormatFlag(cmd.Flags())
	return cmd
}

// printInfo prints info as "Key: value" lines.
func printInfo(w io.Writer, now time.Time, info client.ServerInfo) error {
	orNone := func(s []string, none string) string {
		if len(s) == 0 {
			return none
		}
		return strings.Join(s, ", ")
	}
	metrics := info.MetricsAddress
	if metrics == "" {
		metrics = "off"
	}
	started := "-"
	if known(info.StartedAt) {
		started = fmt.Sprintf("%s (%s)", info.StartedAt.Local().Format(time.RFC3339), relativeTime(now, info.StartedAt))
	}
	lines := []struct{ key, value string }{
		{"Version", info.Version},
		{"Revision", info.Revision},
		{"Go version", info.GoVersion},
		{"PID", fmt.Sprint(info.PID)},
		{"Root", info.Root},
		{"State", info.State},
		{"Address", info.Address},
		{"Metrics", metrics},
		{"Started", started},
		{"Namespaces", fmt.Sprint(info.Namespaces)},
		{"Services", orNone(info.Services, "none")},
		{"Features", orNone(info.Features, "none")},
	}
	for _, l := range lines {
		if _, err := fmt.Fprintf(w, "%s: %s\n", l.key, l.value); err != nil {
			return err
		}
	}
	return nil
}
