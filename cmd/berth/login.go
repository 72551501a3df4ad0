package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/remote"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func newLoginCommand(a *app) *cobra.Command {
	var (
		username, password, hostsDir string
		passwordStdin                bool
	)
	cmd := &cobra.Command{
		Use:   "login [REGISTRY]",
		Short: "Log in to a registry and save the credentials in the Docker config file",
		Long: `Log in to a registry (default docker.io): check the credentials against
the registry's own server, then save them in the Docker config file
($DOCKER_CONFIG/config.json, else ~/.docker/config.json), through its
credential helper if one is configured. Without -p or --password-stdin the
password is asked for on the terminal. berthd is not needed.`,
		Args: maxOneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if password != "" && passwordStdin {
				return usagef("--password and --password-stdin are mutually exclusive")
			}
			if passwordStdin && username == "" {
				return usagef("--password-stdin needs --username")
			}
			registry, err := registryArg(args)
			if err != nil {
				return err
			}
			if password != "" {
				fmt.Fprintln(a.stderr, "WARNING! Using --password on the command line is insecure. Use --password-stdin.")
			}
			in := bufio.NewReader(a.stdin)
			if passwordStdin {
				b, err := io.ReadAll(in)
				if err != nil {
					return fmt.Errorf("read password from stdin: %w", err)
				}
				password = strings.TrimRight(string(b), "\r\n")
				if password == "" {
					return fmt.Errorf("read password from stdin: empty password: %w", errdefs.ErrInvalidArgument)
				}
			}
			if username == "" || password == "" {
				fd, ok := terminalFD(a.stdin)
				if !ok {
					return fmt.Errorf("log in to %s: cannot prompt for credentials: stdin is not a terminal (use -u and --password-stdin): %w",
						registry, errdefs.ErrInvalidArgument)
				}
				if username == "" {
					fmt.Fprint(a.stderr, "Username: ")
					line, err := in.ReadString('\n')
					if err != nil && line == "" {
						return fmt.Errorf("read username: %w", err)
					}
					if username = strings.TrimSpace(line); username == "" {
						return fmt.Errorf("log in to %s: empty username: %w", registry, errdefs.ErrInvalidArgument)
					}
				}
				if password == "" {
					fmt.Fprint(a.stderr, "Password: ")
					password, err = readPassword(fd, in)
					fmt.Fprintln(a.stderr)
					if err != nil {
						return err
					}
					if password == "" {
						return fmt.Errorf("log in to %s: empty password: %w", registry, errdefs.ErrInvalidArgument)
					}
				}
			}

			c, creds := newRemoteClient(hostsDir)
			defer c.Close()
			auth := remote.Auth{Username: username, Password: password}
			if err := c.Login(cmd.Context(), registry, auth); err != nil {
				var rerr *remote.Error
				if remote.IsUnauthorized(err) && errors.As(err, &rerr) {
					return fmt.Errorf("log in to %s: unauthorized: incorrect username or password: %w", registry, rerr)
				}
				return err
			}
			if err := creds.Save(cmd.Context(), registry, auth); err != nil {
				return fmt.Errorf("save credentials for %s: %w", registry, err)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), "Login Succeeded")
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&username, "username", "u", "", "user name")
	f.StringVarP(&password, "password", "p", "", "password (visible to other users; prefer --password-stdin)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	addHostsDirFlag(f, &hostsDir)
	return cmd
}

func newLogoutCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [REGISTRY]",
		Short: "Remove a registry's credentials from the Docker config file",
		Args:  maxOneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			registry, err := registryArg(args)
			if err != nil {
				return err
			}
			creds := remote.DockerConfigCredentials(remote.DefaultDockerConfigPath())
			if err := creds.Remove(cmd.Context(), registry); err != nil {
				if errors.Is(err, errdefs.ErrNotFound) {
					return fmt.Errorf("not logged in to %s: %w", registry, err)
				}
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Removed login credentials for %s\n", registry)
			return err
		},
	}
}

// registryArg is the REGISTRY argument of login and logout, default
// docker.io: a host[:port], also accepted as a URL ("https://host/v1/").
func registryArg(args []string) (string, error) {
	if len(args) == 0 {
		return remote.DockerHub, nil
	}
	s := args[0]
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s, _, _ = strings.Cut(s, "/")
	if s == "" {
		return "", usagef("registry %q: want a host[:port] such as registry.example.com:5000", args[0])
	}
	if s == "index.docker.io" || s == "registry-1.docker.io" {
		s = remote.DockerHub
	}
	return s, nil
}

// terminalFD returns the file descriptor of r if it is a terminal.
func terminalFD(r io.Reader) (int, bool) {
	f, ok := r.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return 0, false
	}
	return fd, true
}

// readPassword reads a line from in, the terminal fd, with echo turned off.
func readPassword(fd int, in *bufio.Reader) (string, error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	defer func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }() // best effort: nothing to do if it fails
	line, err := in.ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// maxOneArg accepts zero or one argument; more are a usage error.
func maxOneArg(cmd *cobra.Command, args []string) error {
	if len(args) > 1 {
		return usagef("%q accepts at most 1 argument, got %d", cmd.CommandPath(), len(args))
	}
	return nil
}
