package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newRunCommand(a *app) *cobra.Command {
	f := newContainerFlags()
	var detach bool
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Run a command in a new container",
		Long: `Run a command in a new container. The image is pulled first when it is
not present (see --pull).

In the foreground berth prints the container's stdout and stderr on its own,
forwards the signals it receives (INT, TERM, HUP, QUIT, USR1, USR2; every
one, so a second Ctrl-C is forwarded too) and exits with the container's
exit status (128+N when signal N killed it). With -it the terminal is in raw
mode and Ctrl-C reaches the container as a keystroke. --rm removes the
container once its exit is read and its output printed.

With -d berth prints the container's id and returns; --rm then has the
daemon remove the container when it exits.`,
		Args:        f.checkArgs,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if detach {
				return runDetached(cmd, a, f, args)
			}
			return runForeground(cmd, a, f, args)
		},
	}
	cmd.Flags().SetInterspersed(false)
	f.add(cmd.Flags())
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "run in the background and print the container's id")
	cmd.Flags().BoolVar(&f.rm, "rm", false, "remove the container when it exits")
	return cmd
}

func runDetached(cmd *cobra.Command, a *app, f *containerFlags, args []string) error {
	ct, err := f.create(cmd, a, args, f.rm)
	if err != nil {
		return err
	}
	if _, err := a.client.CreateTask(cmd.Context(), ct.ID, true); err != nil {
		return removeAfter(a, ct.ID, err)
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), ct.ID)
	return err
}

func runForeground(cmd *cobra.Command, a *app, f *containerFlags, args []string) error {
	ct, err := f.create(cmd, a, args, false)
	if err != nil {
		return err
	}
	// From here on, signals are for the container: they do not end the
	// command's context but are forwarded.
	ctx := context.WithoutCancel(cmd.Context())
	var code int
	if f.interactive || f.tty {
		if _, err := a.client.CreateTask(ctx, ct.ID, false); err != nil {
			return removeAfter(a, ct.ID, err)
		}
		s := session{a: a, containerID: ct.ID, tty: f.tty, stdin: f.interactive, stdout: cmd.OutOrStdout()}
		started := false
		code, err = s.run(ctx, func(ctx context.Context) error {
			_, err := a.client.StartTask(ctx, ct.ID, "")
			started = err == nil
			return err
		})
		if err != nil && !started {
			return removeAfter(a, ct.ID, err)
		}
	} else {
		if _, err := a.client.CreateTask(ctx, ct.ID, true); err != nil {
			return removeAfter(a, ct.ID, err)
		}
		code, err = followToExit(ctx, a, ct.ID, cmd.OutOrStdout())
	}
	if f.rm {
		if rmErr := a.client.DeleteContainer(ctx, ct.ID, true); rmErr != nil && err == nil {
			err = fmt.Errorf("remove container %s: %w", shortID(ct.ID), rmErr)
		}
	}
	if err != nil {
		return err
	}
	return exitWith(code)
}

// followToExit prints the log of a started task until the daemon ends it
// (the task exited and its output is read) and returns the exit status.
func followToExit(ctx context.Context, a *app, id string, stdout io.Writer) (int, error) {
	stop := forwardSignals(ctx, a, id, "")
	defer stop()
	err := a.client.ContainerLogs(ctx, id, client.LogsOptions{Follow: true}, func(e client.LogEntry) error {
		return writeLogEntry(stdout, a.stderr, e, false)
	})
	if err != nil {
		return 0, err
	}
	p, err := a.client.WaitTask(ctx, id, "")
	if err != nil {
		return 0, err
	}
	return int(p.ExitStatus), nil
}

// removeAfter removes a container whose start failed with cause, so a
// failed run leaves nothing behind, and returns cause.
func removeAfter(a *app, id string, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.client.DeleteContainer(ctx, id, true); err != nil && !errors.Is(err, client.ErrNotFound) {
		return fmt.Errorf("%w (removing container %s: %v)", cause, shortID(id), err)
	}
	return cause
}

// exitCode is the exit status of a container or exec that a command (run,
// start -a, exec) makes its own exit status.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// exitWith returns nil for status 0, an exitCode otherwise.
func exitWith(code int) error {
	if code == 0 {
		return nil
	}
	return exitCode(code)
}

// forwardedSignals are the signals berth passes on to a process it runs in
// the foreground without a raw terminal.
var forwardedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// forwardSignals sends every forwarded signal berth receives to the
// process until the returned stop is called.
func forwardSignals(ctx context.Context, a *app, containerID, execID string) (stop func()) {
	return onSignals(8, func(sig os.Signal) {
		err := a.client.KillTask(ctx, containerID, execID, sig.(syscall.Signal), false)
		if err != nil && !errors.Is(err, client.ErrNotFound) && !errors.Is(err, client.ErrFailedPrecondition) {
			fmt.Fprintf(a.stderr, "berth: forward %s: %s\n", signalName(sig.(syscall.Signal)), oneLine(err))
		}
	}, forwardedSignals...)
}

// onSignals calls fn, in a goroutine of its own, for each of sigs berth
// receives (buffering up to buffer of them) until the returned stop is
// called; stop returns once fn is no longer running.
func onSignals(buffer int, fn func(os.Signal), sigs ...os.Signal) (stop func()) {
	sigc := make(chan os.Signal, buffer)
	signal.Notify(sigc, sigs...)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case sig := <-sigc:
				fn(sig)
			}
		}
	})
	return func() {
		signal.Stop(sigc)
		close(done)
		wg.Wait()
	}
}

// session joins berth's stdio to a process of a task: run -i/-t, start -a
// and exec use it.
type session struct {
	a                   *app
	containerID, execID string
	// tty: the process has a terminal (all its output is stdout); stdin:
	// berth's stdin is forwarded to it.
	tty, stdin bool
	stdout     io.Writer
}

// run attaches to the process, calls start, and returns the process's exit
// status once it has exited and its output is written. With a TTY and
// stdin on a terminal, the terminal is in raw mode meanwhile and follows
// its size; otherwise the signals berth receives are forwarded.
//
// The goroutine copying stdin may stay blocked in a read of berth's stdin
// after run returns; berth exits right after, which ends it.
func (s session) run(ctx context.Context, start func(context.Context) error) (int, error) {
	a := s.a
	inFd, inTerm := terminalFd(a.stdin)
	raw := s.tty && s.stdin && inTerm
	if raw {
		state, err := term.MakeRaw(inFd)
		if err != nil {
			return 0, fmt.Errorf("set the terminal to raw mode: %w", err)
		}
		defer term.Restore(inFd, state)
	}
	att, err := a.client.Attach(ctx, s.containerID, s.execID, client.AttachOpts{Stdin: s.stdin, Stdout: s.stdout, Stderr: a.stderr})
	if err != nil {
		return 0, err
	}
	defer att.Close()
	if s.stdin {
		go func() {
			if _, err := io.Copy(att, a.stdin); err == nil {
				att.CloseStdin()
			}
		}()
	}
	if !raw {
		stop := forwardSignals(ctx, a, s.containerID, s.execID)
		defer stop()
	}
	// The init's terminal exists once its task is created: size it before
	// it starts. An exec's is sized at its creation (ExecConfig), and
	// followed from its start.
	if s.tty && s.execID == "" {
		stop := followTerminalSize(s.stdout, a.stdin, att)
		defer stop()
	}
	if err := start(ctx); err != nil {
		return 0, err
	}
	if s.tty && s.execID != "" {
		stop := followTerminalSize(s.stdout, a.stdin, att)
		defer stop()
	}
	p, err := a.client.WaitTask(ctx, s.containerID, s.execID)
	if err != nil {
		return 0, err
	}
	if err := att.Wait(); err != nil {
		return 0, err
	}
	return int(p.ExitStatus), nil
}

// terminalFd returns the file descriptor of f when it is a terminal.
func terminalFd(f any) (int, bool) {
	file, ok := f.(*os.File)
	if !ok || !term.IsTerminal(int(file.Fd())) {
		return 0, false
	}
	return int(file.Fd()), true
}

// terminalOf returns the terminal berth writes to (stdout), or else reads.
func terminalOf(stdout io.Writer, stdin io.Reader) (int, bool) {
	if fd, ok := terminalFd(stdout); ok {
		return fd, true
	}
	return terminalFd(stdin)
}

// terminalSize is the size of berth's terminal; 0, 0 without one.
func terminalSize(stdout io.Writer, stdin io.Reader) (width, height uint32) {
	fd, ok := terminalOf(stdout, stdin)
	if !ok {
		return 0, 0
	}
	w, h, err := term.GetSize(fd)
	if err != nil || w <= 0 || h <= 0 {
		return 0, 0
	}
	return uint32(w), uint32(h)
}

// followTerminalSize sends the size of berth's terminal (its stdout's, or
// else its stdin's) to the attachment now and on every SIGWINCH, until the
// returned stop is called. Without a terminal it does nothing.
func followTerminalSize(stdout io.Writer, stdin io.Reader, att *client.Attachment) (stop func()) {
	if _, ok := terminalOf(stdout, stdin); !ok {
		return func() {}
	}
	resize := func() {
		if w, h := terminalSize(stdout, stdin); w > 0 && h > 0 {
			att.Resize(w, h)
		}
	}
	resize()
	return onSignals(1, func(os.Signal) { resize() }, syscall.SIGWINCH)
}
