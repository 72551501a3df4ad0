package main

import (
	"fmt"
	"io"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newLeaseCommand(a *app) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "lease",
		Short: "Manage leases, which protect resources from garbage collection",
	})
	cmd.AddCommand(
		newLeaseListCommand(a),
		newLeaseCreateCommand(a),
		newLeaseRemoveCommand(a),
	)
	return cmd
}

func newLeaseListCommand(a *app) *cobra.Command {
	var (
		out     output
		filters []string
	)
	cmd := &cobra.Command{
		Use:         "ls",
		Aliases:     []string{"list"},
		Short:       "List leases",
		Args:        noArgs,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			leases, err := a.client.ListLeases(cmd.Context(), filters...)
			if err != nil {
				return err
			}
			return printLeases(cmd.OutOrStdout(), out, time.Now(), leases)
		},
	}
	out.addListFlags(cmd.Flags(), "id")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "list only leases matching `FILTER` (e.g. id~=^pull; repeatable, any may match)")
	return cmd
}

func printLeases(w io.Writer, out output, now time.Time, leases []client.Lease) error {
	return printList(w, out, leases,
		func(l client.Lease) string { return l.ID },
		[]string{"id", "created", "expires", "labels"},
		func(l client.Lease) []string {
			return []string{l.ID, relativeTime(now, l.CreatedAt), leaseExpires(now, l), labelsColumn(l.Labels)}
		})
}

// leaseExpires renders a lease's expiry for a table: "in 59 minutes",
// "expired 2 minutes ago" once past, "never" without one, or the label as is when it
// is not a time.
func leaseExpires(now time.Time, l client.Lease) string {
	v, ok := l.Labels[client.LabelLeaseExpire]
	if !ok {
		return "never"
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return v
	}
	if now.Sub(t) >= time.Second {
		return "expired " + relativeTime(now, t)
	}
	return relativeTime(now, t)
}

func newLeaseCreateCommand(a *app) *cobra.Command {
	var (
		id     string
		expire time.Duration
	)
	labels := labelsFlag{}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a lease and print its id",
		Args: func(cmd *cobra.Command, args []string) error {
			if expire < 0 {
				return usagef("--expire must not be negative")
			}
			return noArgs(cmd, args)
		},
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := a.client.CreateLease(cmd.Context(), id, expire, labels)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), l.ID)
			return err
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "lease `ID` (default: random)")
	cmd.Flags().DurationVar(&expire, "expire", 0, "expire the lease after `DURATION` (e.g. 1h; default: never)")
	cmd.Flags().Var(labels, "label", "set a label (repeatable)")
	return cmd
}

func newLeaseRemoveCommand(a *app) *cobra.Command {
	var sync bool
	cmd := &cobra.Command{
		Use:         "rm ID...",
		Aliases:     []string{"remove"},
		Short:       "Remove leases, printing each id removed",
		Args:        minArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return removeEach(cmd, a, args, func(id string) error {
				return a.client.DeleteLease(cmd.Context(), id, sync)
			})
		},
	}
	cmd.Flags().BoolVar(&sync, "sync", false, "collect what only these leases held before returning")
	return cmd
}
