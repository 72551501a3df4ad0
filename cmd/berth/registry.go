package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/berth-dev/berth/internal/remote"
	"github.com/spf13/cobra"
)

func newRegistryCommand(a *app) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "registry",
		Short: "Show how registries are reached, without berthd",
	})
	cmd.AddCommand(newRegistryExplainCommand(a))
	return cmd
}

// capabilityValue is the --capability flag; other values are flag (usage)
// errors.
type capabilityValue remote.Capability

func (c *capabilityValue) String() string { return remote.Capability(*c).String() }
func (c *capabilityValue) Type() string   { return "pull|resolve|push" }
func (c *capabilityValue) Set(s string) error {
	switch s {
	case "pull":
		*c = capabilityValue(remote.CapPull)
	case "resolve":
		*c = capabilityValue(remote.CapResolve)
	case "push":
		*c = capabilityValue(remote.CapPush)
	default:
		return fmt.Errorf("want pull, resolve or push")
	}
	return nil
}

// hostDoc is one host of `registry explain --format json`.
type hostDoc struct {
	URL          string              `json:"url"`
	Host         string              `json:"host"`
	Mirror       bool                `json:"mirror"`
	Capabilities []string            `json:"capabilities"`
	PlainHTTP    bool                `json:"plainHTTP"`
	HTTPFallback bool                `json:"httpFallback"`
	SkipVerify   bool                `json:"skipVerify"`
	CAs          []string            `json:"ca,omitempty"`
	ClientCerts  []remote.ClientCert `json:"clientCerts,omitempty"`
	Headers      map[string][]string `json:"headers,omitempty"`
	Credentials  string              `json:"credentials"`
	Source       string              `json:"source,omitempty"`
}

func newRegistryExplainCommand(_ *app) *cobra.Command {
	var (
		out        output
		hostsDir   string
		capability = capabilityValue(remote.CapPull)
	)
	cmd := &cobra.Command{
		Use:   "explain IMAGE",
		Short: "List the hosts that would be tried for an image, in order, with their settings",
		Long: `List the hosts that would be tried for an image, in order (mirrors first,
then the registry's server), with what each is used for, how it is reached
(plain HTTP or TLS: skip_verify, CA files, client certificates) and where
its credentials come from. It reads the hosts.toml files and the Docker
config file but contacts no registry.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseRef(args[0])
			if err != nil {
				return err
			}
			c, _ := newRemoteClient(hostsDir)
			defer c.Close()
			plans, err := c.Explain(cmd.Context(), ref, remote.Capability(capability))
			if err != nil {
				return err
			}
			if out.json() {
				docs := make([]hostDoc, 0, len(plans))
				for _, p := range plans {
					docs = append(docs, hostDoc{
						URL: p.URL, Host: p.Host, Mirror: p.Mirror, Capabilities: strings.Split(p.Capabilities.String(), ","),
						PlainHTTP: p.PlainHTTP, HTTPFallback: p.HTTPFallback, SkipVerify: p.SkipVerify, CAs: p.CAs,
						ClientCerts: p.ClientCerts, Headers: p.Header, Credentials: p.Credentials, Source: p.Source,
					})
				}
				return printJSON(cmd.OutOrStdout(), docs)
			}
			return printPlans(cmd.OutOrStdout(), ref, remote.Capability(capability), plans)
		},
	}
	out.addFormatFlag(cmd.Flags())
	cmd.Flags().Var(&capability, "capability", "what the hosts are for: pull, resolve or push")
	addHostsDirFlag(cmd.Flags(), &hostsDir)
	return cmd
}

// printPlans prints the hosts of registry explain for people.
func printPlans(w io.Writer, ref remote.Reference, capability remote.Capability, plans []remote.HostPlan) error {
	fmt.Fprintf(w, "%s (%s): %s tried in this order\n", ref.Registry, capability, plural(int64(len(plans)), "host"))
	for i, p := range plans {
		kind := "server"
		if p.Mirror {
			kind = "mirror"
		}
		fmt.Fprintf(w, "%d. %s (%s)\n", i+1, p.URL, kind)
		fmt.Fprintf(w, "   capabilities: %s\n", p.Capabilities)
		switch {
		case p.PlainHTTP:
			fmt.Fprintf(w, "   transport:    plain HTTP\n")
		case p.HTTPFallback:
			fmt.Fprintf(w, "   transport:    TLS, falling back to plain HTTP (loopback)\n")
		default:
			fmt.Fprintf(w, "   transport:    TLS\n")
		}
		if !p.PlainHTTP {
			fmt.Fprintf(w, "   skip_verify:  %t\n", p.SkipVerify)
			if len(p.CAs) > 0 {
				fmt.Fprintf(w, "   ca:           %s\n", strings.Join(p.CAs, ", "))
			}
			for _, cc := range p.ClientCerts {
				if cc.Key == "" {
					fmt.Fprintf(w, "   client cert:  %s\n", cc.Cert)
				} else {
					fmt.Fprintf(w, "   client cert:  %s (key %s)\n", cc.Cert, cc.Key)
				}
			}
		}
		if len(p.Header) > 0 {
			keys := make([]string, 0, len(p.Header))
			for k := range p.Header {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "   header:       %s: %s\n", k, strings.Join(p.Header[k], ", "))
			}
		}
		fmt.Fprintf(w, "   credentials:  %s\n", credentialsSource(p))
		source := p.Source
		if source == "" {
			source = "built-in defaults"
		}
		if _, err := fmt.Fprintf(w, "   source:       %s\n", source); err != nil {
			return err
		}
	}
	return nil
}

// credentialsSource says where a host's credentials come from.
func credentialsSource(p remote.HostPlan) string {
	switch p.Credentials {
	case remote.CredentialsHostsFile:
		return "yes, from " + p.Source
	case remote.CredentialsProvider:
		return "yes, from " + remote.DefaultDockerConfigPath()
	default:
		return "none (anonymous)"
	}
}
