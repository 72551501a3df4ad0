// Command berth-shim runs one container for berthd. berthd starts it through
// internal/runtime; it is not meant to be run by hand. See
// docs/shim-protocol.md.
//
//	berth-shim --id ID --bundle DIR --runtime PATH --runtime-root DIR [--runtime-fd 4]
//	    [--log-path FILE --log-max-size BYTES --log-max-files N] [--tty] [--stdin] [--start]
//	    [--ready-fd 3]
//	berth-shim delete --id ID --runtime PATH --runtime-root DIR
//
// The second form kills and removes a container whose shim died.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"syscall"

	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/shim"
	"github.com/berth-dev/berth/internal/version"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "delete" {
		os.Exit(deleteMain(os.Args[2:]))
	}
	os.Exit(serveMain(os.Args[1:]))
}

func serveMain(args []string) int {
	// Memory is the shim's headline figure. Its heap is tiny and mostly
	// long-lived: collect early rather than let it double. One P is plenty
	// for its few goroutines and saves a P's caches and GC worker.
	debug.SetGCPercent(50)
	goruntime.GOMAXPROCS(1)

	fs := flag.NewFlagSet("berth-shim", flag.ContinueOnError)
	var cfg shim.Config
	readyFD := fs.Int("ready-fd", -1, "descriptor that receives the readiness line")
	fs.IntVar(&cfg.RuntimeFD, "runtime-fd", -1, "descriptor of a sealed copy of the runtime binary, run instead of it")
	debugLog := fs.Bool("debug", false, "log every call")
	fs.StringVar(&cfg.ID, "id", "", "container ID")
	fs.StringVar(&cfg.Bundle, "bundle", "", "task directory (OCI bundle)")
	fs.StringVar(&cfg.Runtime, "runtime", "/usr/sbin/runc", "OCI runtime binary")
	fs.StringVar(&cfg.RuntimeRoot, "runtime-root", "", "runtime state directory (--root)")
	fs.StringVar(&cfg.LogPath, "log-path", "", "container log file (CRI format)")
	fs.Int64Var(&cfg.LogMaxSize, "log-max-size", 0, "rotate the log at this many bytes (0: never)")
	fs.IntVar(&cfg.LogMaxFiles, "log-max-files", 1, "log files kept, the live one included")
	fs.BoolVar(&cfg.Terminal, "tty", false, "give the init a terminal")
	fs.BoolVar(&cfg.Stdin, "stdin", false, "keep the init's stdin open")
	fs.BoolVar(&cfg.Start, "start", false, "start the container as well (runtime run --detach)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Version = version.Version

	level := slog.LevelInfo
	if *debugLog {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("container_id", cfg.ID)
	if cfg.RuntimeFD >= 0 {
		// Kept for the shim's runtime calls, never passed on: the kernel
		// resolves /proc/self/fd/N before it closes it at exec.
		syscall.CloseOnExec(cfg.RuntimeFD)
	}
	var ready io.Writer
	if *readyFD >= 0 {
		// Inherited without close-on-exec: keep it from the runtime.
		syscall.CloseOnExec(*readyFD)
		ready = closeAfterWrite{os.NewFile(uintptr(*readyFD), "ready")}
	}
	err := shim.Run(log.WithLogger(context.Background(), logger), cfg, ready)
	if err != nil {
		logger.Error("shim", "error", err)
		return 1
	}
	return 0
}

// closeAfterWrite closes the readiness descriptor after the one line, so
// that the launcher sees end of file and the descriptor is not held.
type closeAfterWrite struct{ f *os.File }

func (c closeAfterWrite) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	c.f.Close()
	return n, err
}

func deleteMain(args []string) int {
	fs := flag.NewFlagSet("berth-shim delete", flag.ContinueOnError)
	id := fs.String("id", "", "container ID")
	rt := fs.String("runtime", "/usr/sbin/runc", "OCI runtime binary")
	root := fs.String("runtime-root", "", "runtime state directory (--root)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *id == "" || *root == "" {
		fmt.Fprintln(os.Stderr, "berth-shim delete: --id and --runtime-root are required")
		return 2
	}
	if err := shim.ForceDelete(*rt, *root, *id); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
