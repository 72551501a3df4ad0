package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newPortCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PORT[/PROTO]]",
		Short: "List a container's published ports",
		Long: `List a container's published ports, one "8080/tcp -> 127.0.0.1:18080" per
line, or, given a container port, only the host addresses it is published
on.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usagef("%q requires a container and an optional port, got %d arguments", cmd.CommandPath(), len(args))
			}
			if len(args) == 2 {
				if _, _, err := parsePortFilter(args[1]); err != nil {
					return &usageError{err}
				}
			}
			return nil
		},
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ct, err := a.client.GetContainer(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var lines []string
			if len(args) == 2 {
				port, proto, _ := parsePortFilter(args[1])
				for _, p := range ct.Config.Ports {
					if p.ContainerPort == port && protocol(p) == proto {
						lines = append(lines, hostAddress(p))
					}
				}
				if len(lines) == 0 {
					return fmt.Errorf("container %s does not publish %d/%s: %w", args[0], port, proto, client.ErrNotFound)
				}
			} else {
				lines = portLines(ct.Config.Ports)
			}
			for _, l := range lines {
				if _, err := fmt.Fprintln(cmd.OutOrStdout(), l); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// portLines renders published ports as "8080/tcp -> 127.0.0.1:18080".
func portLines(ports []client.PortMapping) []string {
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		out = append(out, strconv.Itoa(int(p.ContainerPort))+"/"+protocol(p)+" -> "+hostAddress(p))
	}
	return out
}

// parsePortFilter parses port's PORT[/PROTO] argument.
func parsePortFilter(s string) (uint16, string, error) {
	port, proto, ok := strings.Cut(s, "/")
	if !ok {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return 0, "", fmt.Errorf("port %q: protocol %q: want tcp or udp", s, proto)
	}
	n, err := parsePort(port)
	if err != nil {
		return 0, "", fmt.Errorf("port %q: %w", s, err)
	}
	return n, proto, nil
}
