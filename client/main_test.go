package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/config"
	"github.com/berth-dev/berth/internal/daemon"
)

// socket is the API socket of the in-process daemon the examples and tests use.
var socket string

// TestMain runs a real daemon (content store, metadata, gRPC) in this process
// on temporary directories; no root is needed, but as root it can also run
// containers.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-client-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg := config.Default()
	cfg.Root, cfg.State = filepath.Join(dir, "root"), filepath.Join(dir, "state")
	cfg.GRPC.Address = filepath.Join(cfg.State, "berth.sock")
	cfg.GC.Delay = config.Duration(time.Millisecond)
	if os.Geteuid() == 0 { // containers can run: the daemon needs its shim
		build := exec.Command("go", "build", "-o", dir+"/", "github.com/berth-dev/berth/cmd/berth-shim")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build berth-shim: %v\n%s", err, out)
			os.Exit(1)
		}
		cfg.Runtime.Shim = filepath.Join(dir, "berth-shim")
	}
	// Daemon logs would interleave with example output; keep warnings only.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, cancel := context.WithCancel(context.Background())
	d, err := daemon.New(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start daemon:", err)
		os.Exit(1)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	socket = cfg.GRPC.Address
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "daemon:", err)
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}
