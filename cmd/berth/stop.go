package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newStopCommand(a *app) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "stop CONTAINER...",
		Short: "Stop containers, printing each one stopped",
		Long: `Stop containers: send the image's stop signal (SIGTERM unless the image
says otherwise), wait for the exit, and send SIGKILL if it has not come
within the timeout. A container that is not running is left as it is.`,
		Args:        minArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			grace := time.Duration(timeout) * time.Second
			if timeout < 0 {
				grace = -1
			}
			return removeEach(cmd, a, args, func(id string) error {
				return stopContainer(cmd.Context(), a.client, id, grace)
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before killing (-1: wait for ever)")
	return cmd
}

// stopContainer signals a container's init with its stop signal and waits
// up to grace (for ever when negative) for it to exit, then kills it.
func stopContainer(ctx context.Context, c *client.Client, id string, grace time.Duration) error {
	ct, err := c.GetContainer(ctx, id)
	if err != nil {
		return err
	}
	if !isUp(ct.Status) {
		return nil
	}
	sig, err := stopSignal(ct.Spec)
	if err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	if err := signalUp(ctx, c, ct, sig); err != nil {
		return err
	}
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if grace >= 0 {
		wctx, cancel = context.WithTimeout(ctx, grace)
	}
	_, err = c.WaitTask(wctx, ct.ID, "")
	cancel()
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		return ignoreGone(err)
	}
	if err := signalUp(ctx, c, ct, syscall.SIGKILL); err != nil {
		return err
	}
	_, err = c.WaitTask(ctx, ct.ID, "")
	return ignoreGone(err)
}

// signalUp sends sig to a container's init; a paused task is resumed so
// the signal is delivered.
func signalUp(ctx context.Context, c *client.Client, ct client.Container, sig syscall.Signal) error {
	if err := c.KillTask(ctx, ct.ID, "", sig, false); err != nil {
		return ignoreGone(err)
	}
	if ct.Status == client.StatusPaused {
		return ignoreGone(c.ResumeTask(ctx, ct.ID))
	}
	return nil
}

// ignoreGone drops the errors that mean the task has exited meanwhile.
func ignoreGone(err error) error {
	if errors.Is(err, client.ErrNotFound) || errors.Is(err, client.ErrFailedPrecondition) {
		return nil
	}
	return err
}

// stopSignalAnnotation is where the daemon records the image's StopSignal
// in the runtime spec (the OCI image-spec conversion rule).
const stopSignalAnnotation = "org.opencontainers.image.stopSignal"

// stopSignal is the signal that stops a container: its spec's stop signal
// annotation, or SIGTERM.
func stopSignal(spec json.RawMessage) (syscall.Signal, error) {
	var s struct {
		Annotations map[string]string `json:"annotations"`
	}
	if len(spec) > 0 {
		if err := json.Unmarshal(spec, &s); err != nil {
			return 0, fmt.Errorf("runtime spec: %w", err)
		}
	}
	name := s.Annotations[stopSignalAnnotation]
	if name == "" {
		return syscall.SIGTERM, nil
	}
	sig, err := parseSignal(name)
	if err != nil {
		return 0, fmt.Errorf("stop signal: %w", err)
	}
	return sig, nil
}
