package main

import (
	"fmt"
	"io"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newNamespaceCommand(a *app) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:     "namespace",
		Aliases: []string{"ns"},
		Short:   "Manage namespaces",
	})
	cmd.AddCommand(
		newNamespaceCreateCommand(a),
		newNamespaceListCommand(a),
		newNamespaceRemoveCommand(a),
		newNamespaceLabelCommand(a),
	)
	return cmd
}

func newNamespaceCreateCommand(a *app) *cobra.Command {
	labels := labelsFlag{}
	cmd := &cobra.Command{
		Use:         "create NAME",
		Short:       "Create a namespace and print its name",
		Args:        exactArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, err := a.client.CreateNamespace(cmd.Context(), args[0], labels)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), ns.Name)
			return err
		},
	}
	cmd.Flags().Var(labels, "label", "set a label (repeatable)")
	return cmd
}

func newNamespaceListCommand(a *app) *cobra.Command {
	var (
		out     output
		filters []string
	)
	cmd := &cobra.Command{
		Use:         "ls",
		Aliases:     []string{"list"},
		Short:       "List namespaces",
		Args:        noArgs,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			nss, err := a.client.ListNamespaces(cmd.Context(), filters...)
			if err != nil {
				return err
			}
			return printNamespaces(cmd.OutOrStdout(), out, nss)
		},
	}
	out.addListFlags(cmd.Flags(), "name")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "list only namespaces matching `FILTER` (e.g. labels.team==web; repeatable, any may match)")
	return cmd
}

func printNamespaces(w io.Writer, out output, nss []client.Namespace) error {
	return printList(w, out, nss,
		func(n client.Namespace) string { return n.Name },
		[]string{"name", "labels"},
		func(n client.Namespace) []string { return []string{n.Name, labelsColumn(n.Labels)} })
}

func newNamespaceRemoveCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:         "rm NAME...",
		Aliases:     []string{"remove"},
		Short:       "Remove empty namespaces, printing each name removed",
		Args:        minArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return removeEach(cmd, a, args, func(name string) error {
				return a.client.DeleteNamespace(cmd.Context(), name)
			})
		},
	}
}

func newNamespaceLabelCommand(a *app) *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:         "label NAME KEY=VALUE...",
		Short:       "Set or remove (KEY=) labels of a namespace and print its labels",
		Args:        labelArgs,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			labels, err := parseLabels(args[1:], true)
			if err != nil {
				return err
			}
			ns, err := a.client.SetNamespaceLabels(cmd.Context(), args[0], labels)
			if err != nil {
				return err
			}
			if out.json() {
				return printJSON(cmd.OutOrStdout(), ns)
			}
			return printLabels(cmd.OutOrStdout(), ns.Labels)
		},
	}
	out.addFormatFlag(cmd.Flags())
	return cmd
}

// printLabels prints labels as sorted KEY=VALUE lines.
func printLabels(w io.Writer, labels map[string]string) error {
	for _, l := range sortedLabels(labels) {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return err
		}
	}
	return nil
}
