// Command berth is the command-line client of berthd. It is a thin shell over
// package client: each subcommand parses its flags, makes one or a few client
// calls and prints the result. Tables are for people; --format json and -q are
// for scripts.
//
// Exit codes: 0 on success, 1 when a command fails (the message is printed as
// "berth: <message>" on stderr), 2 for an unknown command, a bad flag or a
// wrong number of arguments.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes of run.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// run executes the berth command line args and returns the process's exit
// code. Everything it prints goes to stdout and stderr.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stderr: stderr}
	defer a.close()
	root := newRootCommand(a)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	var uerr *usageError
	var status exitCode
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &status): // run, exec, start -a: the process's own status
		return int(status)
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "berth: %s\nRun '%s --help' for usage.\n", oneLine(err), cmd.CommandPath())
		return exitUsage
	case errors.Is(err, errReported):
		return exitError
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "berth: interrupted")
		return exitError
	default:
		fmt.Fprintf(stderr, "berth: %s\n", oneLine(err))
		return exitError
	}
}

// oneLine keeps an error message on a single line.
func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}
