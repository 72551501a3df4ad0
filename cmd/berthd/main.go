// Command berthd is berth's daemon: flags -> config -> daemon.New -> serve on
// the Unix socket until SIGTERM or SIGINT.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth-dev/berth/internal/config"
	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/version"
	"github.com/spf13/cobra"
)

const defaultConfigPath = "/etc/berth/config.toml"

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	var (
		configPath string
		flags      config.Config
	)
	cmd := &cobra.Command{
		Use:               "berthd",
		Short:             "berth container runtime daemon",
		Version:           version.Version + " (" + version.Revision + ")",
		Args:              cobra.NoArgs,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configPath, !cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			// Flags given on the command line win over the file.
			for name, apply := range map[string]func(){
				"root":      func() { cfg.Root = flags.Root },
				"state":     func() { cfg.State = flags.State },
				"address":   func() { cfg.GRPC.Address = flags.GRPC.Address },
				"log-level": func() { cfg.LogLevel = flags.LogLevel },
			} {
				if cmd.Flags().Changed(name) {
					apply()
				}
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("flags: %w", err)
			}
			level, err := log.ParseLevel(cfg.LogLevel)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			slog.SetDefault(logger)
			ctx, stop := signal.NotifyContext(log.WithLogger(context.Background(), logger), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			d, err := daemon.New(ctx, cfg)
			if err != nil {
				return err
			}
			return d.Serve(ctx)
		},
	}
	def := config.Default()
	f := cmd.Flags()
	f.StringVar(&flags.Root, "root", def.Root, "directory for persistent state")
	f.StringVar(&flags.State, "state", def.State, "directory for runtime state")
	f.StringVarP(&flags.GRPC.Address, "address", "a", def.GRPC.Address, "Unix socket of the API")
	f.StringVarP(&configPath, "config", "c", defaultConfigPath, "config file")
	f.StringVar(&flags.LogLevel, "log-level", def.LogLevel, "log level: debug, info, warn or error")
	cmd.AddCommand(newConfigCommand())
	return cmd
}

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect the daemon configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "Print the default configuration as TOML",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return config.Encode(cmd.OutOrStdout(), config.Default())
		},
	})
	return cmd
}
