package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

// app holds what the global flags choose and the daemon connection, made in
// the root's PersistentPreRunE for the commands that need it.
type app struct {
	address   string
	namespace string
	stdin     io.Reader
	stderr    io.Writer
	client    *client.Client
}

func (a *app) connect(cmd *cobra.Command) error {
	c, err := client.New(cmd.Context(), a.address, client.WithNamespace(a.namespace))
	if err != nil {
		return err
	}
	a.client = c
	return nil
}

func (a *app) close() {
	if a.client != nil {
		a.client.Close()
	}
}

// daemonAnnotation marks the commands that connect to berthd before they run.
const daemonAnnotation = "berth.io/daemon"

func needsDaemon() map[string]string { return map[string]string{daemonAnnotation: "true"} }

// usageError is a mistake on the command line (exit code 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// errReported means the command already printed its errors (for example rm
// of several objects) and only needs to exit 1.
var errReported = errors.New("errors reported")

func newRootCommand(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "berth",
		Short: "berth is the command-line client of the berthd container runtime",
		Long: `berth is the command-line client of the berthd container runtime.

Tables are meant for people; use --format json or -q in scripts.
Exit codes: 0 success, 1 the command failed, 2 wrong usage.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Annotations[daemonAnnotation] == "" {
				return nil
			}
			return a.connect(cmd)
		},
	}
	group(root)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })

	address := os.Getenv("BERTH_ADDRESS")
	if address == "" {
		address = client.DefaultAddress
	}
	namespace := os.Getenv("BERTH_NAMESPACE")
	if namespace == "" {
		namespace = client.DefaultNamespace
	}
	f := root.PersistentFlags()
	f.StringVar(&a.address, "address", address, "berthd socket (env BERTH_ADDRESS)")
	f.StringVarP(&a.namespace, "namespace", "n", namespace, "namespace of the command (env BERTH_NAMESPACE)")

	root.AddCommand(
		newVersionCommand(a),
		newInfoCommand(a),
		newNamespaceCommand(a),
		newContentCommand(a),
		newLeaseCommand(a),
		newEventsCommand(a),
		newSystemCommand(a),
		newImageCommand(a),
		newPullCommand(a),
		newPushCommand(a),
		newSaveCommand(a),
		newLoadCommand(a),
		newImagesCommand(a),
		newRmiCommand(a),
		newTagCommand(a),
		newSnapshotCommand(a),
		newDFCommand(a),
		newLoginCommand(a),
		newLogoutCommand(a),
		newRemoteCommand(a),
		newRegistryCommand(a),
		newRunCommand(a),
		newCreateCommand(a),
		newStartCommand(a),
		newPsCommand(a),
		newExecCommand(a),
		newLogsCommand(a),
		newStopCommand(a),
		newKillCommand(a),
		newRmCommand(a),
		newPauseCommand(a),
		newUnpauseCommand(a),
		newInspectCommand(a),
		newStatsCommand(a),
		newWaitCommand(a),
		newCommitCommand(a),
		newPortCommand(a),
		newUpdateCommand(a),
		newTopCommand(a),
	)
	return root
}

// group makes cmd a command that only holds subcommands: alone it prints its
// help, and an unknown subcommand is a usage error (cobra would print the
// help and succeed).
func group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf(" (did you mean %q?)", s[0])
		}
		return &usageError{errors.New(msg)}
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	return cmd
}

// Argument validators; their errors are usage errors.

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%q accepts no arguments, got %q", cmd.CommandPath(), args[0])
	}
	return nil
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%q requires exactly %s, got %d", cmd.CommandPath(), arguments(n), len(args))
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%q requires at least %s, got %d", cmd.CommandPath(), arguments(n), len(args))
		}
		return nil
	}
}

func arguments(n int) string { return plural(int64(n), "argument") }

// parseLabel parses a KEY=VALUE argument. With allowEmpty, KEY= gives an
// empty value (which removes the label in label commands); otherwise an
// empty value is an error.
func parseLabel(arg string, allowEmpty bool) (key, value string, err error) {
	k, v, ok := strings.Cut(arg, "=")
	switch {
	case !ok:
		return "", "", fmt.Errorf("label %q: want KEY=VALUE", arg)
	case k == "":
		return "", "", fmt.Errorf("label %q: empty key", arg)
	case v == "" && !allowEmpty:
		return "", "", fmt.Errorf("label %q: empty value (KEY= only removes a label in label commands)", arg)
	}
	return k, v, nil
}

// parseLabels parses KEY=VALUE arguments (see parseLabel); errors are usage
// errors.
func parseLabels(args []string, allowEmpty bool) (map[string]string, error) {
	labels := make(map[string]string, len(args))
	for _, arg := range args {
		k, v, err := parseLabel(arg, allowEmpty)
		if err != nil {
			return nil, &usageError{err}
		}
		labels[k] = v
	}
	return labels, nil
}

// labelArgs checks the arguments of a label command: an object and at least
// one KEY=VALUE. It runs before connecting, so a typo is a usage error.
func labelArgs(cmd *cobra.Command, args []string) error {
	if err := minArgs(2)(cmd, args); err != nil {
		return err
	}
	_, err := parseLabels(args[1:], true)
	return err
}

// labelsFlag is a repeatable --label KEY=VALUE flag; a bad value is a flag
// (usage) error.
type labelsFlag map[string]string

func (l labelsFlag) String() string { return strings.Join(sortedLabels(l), ",") }
func (l labelsFlag) Type() string   { return "KEY=VALUE" }
func (l labelsFlag) Set(s string) error {
	k, v, err := parseLabel(s, false)
	if err != nil {
		return err
	}
	l[k] = v
	return nil
}

// sortedLabels renders labels as sorted KEY=VALUE strings.
func sortedLabels(labels map[string]string) []string {
	out := make([]string, 0, len(labels))
	for k, v := range labels {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// removeEach runs rm on every id, printing the ids removed on stdout and the
// failures on stderr. It fails, with errReported, if any rm did.
func removeEach(cmd *cobra.Command, a *app, ids []string, rm func(id string) error) error {
	failed := false
	for _, id := range ids {
		if err := rm(id); err != nil {
			msg := oneLine(err)
			if !strings.Contains(msg, id) {
				msg = id + ": " + msg
			}
			fmt.Fprintf(a.stderr, "berth: %s\n", msg)
			failed = true
			continue
		}
		fmt.Fprintln(cmd.OutOrStdout(), id)
	}
	if failed {
		return errReported
	}
	return nil
}
