package main

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/internal/remote"
	"github.com/spf13/cobra"
)

func newPushCommand(a *app) *cobra.Command {
	var (
		opts  client.PushOptions
		quiet bool
	)
	cmd := &cobra.Command{
		Use:   "push [--platform P] IMAGE [REF]",
		Short: "Push an image to a registry",
		Long: `Push the image IMAGE to a registry, as REF (default IMAGE itself).

Layers the registry has are skipped, layers in another repository of the
same registry are mounted from there, and the manifests go last, so REF
never names a half-pushed image. Every layer must be in berthd's content
store: push one platform of an image pulled for one platform with
--platform. The daemon pushes only to hosts with the push capability in its
/etc/berth/certs.d/<host>/hosts.toml (normally the registry's own server,
never a pull-only mirror). The credentials "berth login" saved for REF's
registry are sent to the daemon for this push.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usagef("%q requires 1 or 2 arguments, got %d", cmd.CommandPath(), len(args))
			}
			return nil
		},
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			start := time.Now()
			ref := args[0]
			if len(args) == 2 {
				ref = args[1]
			}
			auth, err := registryAuth(cmd.Context(), ref)
			if err != nil {
				return err
			}
			opts.Auth = auth
			view := newProgressView(a.stderr, isTerminal(a.stderr))
			if !quiet {
				opts.Progress = view.updatePush
			}
			desc, err := a.client.Push(cmd.Context(), args[0], ref, opts)
			view.finish()
			if err != nil {
				return err
			}
			if quiet {
				_, err = fmt.Fprintln(cmd.OutOrStdout(), desc.Digest)
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: pushed %s in %s\n", ref, desc.Digest, time.Since(start).Round(time.Millisecond))
			return err
		},
	}
	cmd.Flags().StringVar(&opts.Platform, "platform", "", "push only the `OS/ARCH[/VARIANT]` manifest of an index")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the pushed digest, no progress")
	return cmd
}

// registryAuth returns the credentials "berth login" saved in the Docker
// config file for the registry of the image reference ref, to send with a
// pull or push; none when ref is malformed (the daemon then says why).
func registryAuth(ctx context.Context, ref string) (client.RegistryAuth, error) {
	r, err := remote.ParseReference(ref)
	if err != nil {
		return client.RegistryAuth{}, nil
	}
	a, err := remote.DockerConfigCredentials(remote.DefaultDockerConfigPath()).Credentials(ctx, r.Registry)
	if err != nil {
		return client.RegistryAuth{}, err
	}
	return client.RegistryAuth{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}, nil
}
