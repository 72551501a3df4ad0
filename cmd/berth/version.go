package main

import (
	"fmt"
	"io"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/internal/version"
	"github.com/spf13/cobra"
)

// versionInfo is one side of `berth version --format json`.
type versionInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision"`
}

type versionReport struct {
	Client versionInfo  `json:"client"`
	Server *versionInfo `json:"server,omitempty"`
}

func newVersionCommand(a *app) *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client and server versions",
		Long: `Print the client and server versions.

The client version is printed even when berthd cannot be reached; the command
then fails with the connection error.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			report := versionReport{Client: versionInfo{Version: version.Version, Revision: version.Revision}}
			// Connect here, not in PersistentPreRunE: the client line comes first.
			err := a.connect(cmd)
			if err == nil {
				var s client.ServerInfo
				if s, err = a.client.Server(cmd.Context()); err == nil {
					report.Server = &versionInfo{Version: s.Version, Revision: s.Revision}
				}
			}
			if perr := printVersion(w, out, report); perr != nil {
				return perr
			}
			return err
		},
	}
	out.addFormatFlag(cmd.Flags())
	return cmd
}

func printVersion(w io.Writer, out output, r versionReport) error {
	if out.json() {
		return printJSON(w, r)
	}
	if _, err := fmt.Fprintf(w, "Client: %s (%s)\n", r.Client.Version, r.Client.Revision); err != nil {
		return err
	}
	if r.Server != nil {
		_, err := fmt.Fprintf(w, "Server: %s (%s)\n", r.Server.Version, r.Server.Revision)
		return err
	}
	return nil
}
