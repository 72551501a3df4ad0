package main

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func newKillCommand(a *app) *cobra.Command {
	sig := signalValue(syscall.SIGKILL)
	cmd := &cobra.Command{
		Use:         "kill CONTAINER...",
		Short:       "Send a signal to containers' init processes, printing each container",
		Args:        minArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return removeEach(cmd, a, args, func(id string) error {
				return a.client.KillTask(cmd.Context(), id, "", syscall.Signal(sig), false)
			})
		},
	}
	cmd.Flags().VarP(&sig, "signal", "s", "signal to send: a name (TERM, SIGUSR1) or a number")
	return cmd
}

// signalValue is a signal flag.
type signalValue syscall.Signal

func (s *signalValue) String() string { return signalName(syscall.Signal(*s)) }
func (s *signalValue) Type() string   { return "SIGNAL" }
func (s *signalValue) Set(v string) error {
	sig, err := parseSignal(v)
	if err != nil {
		return err
	}
	*s = signalValue(sig)
	return nil
}

// parseSignal parses a signal name, with or without SIG and in any case
// (TERM, sigusr1, SIGRTMIN+3), or a number.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > maxSignal {
			return 0, fmt.Errorf("signal %d is out of range (1-%d)", n, maxSignal)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if rt, ok := strings.CutPrefix(name, "SIGRTMIN+"); ok {
		if n, err := strconv.Atoi(rt); err == nil && n >= 0 && sigRTMin+n <= maxSignal {
			return syscall.Signal(sigRTMin + n), nil
		}
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// Real-time signals: the first one a process may use (glibc and musl keep
// 32 and 33 for themselves) and the last.
const (
	sigRTMin  = 34
	maxSignal = 64
)

// signalName is "SIGTERM" for a known signal, its number otherwise.
func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return strconv.Itoa(int(sig))
}
