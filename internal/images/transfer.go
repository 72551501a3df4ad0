package images

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/remote"
	"github.com/opencontainers/go-digest"
)

// errMissingContent is wrapped by the error of a push or create that needs
// a blob the content store lacks.
var errMissingContent = fmt.Errorf("not in the content store: %w", errdefs.ErrFailedPrecondition)

// remoteFor returns the registry client for one call to registry: the
// shared Config.Remote when auth is zero, else a client of the call's own
// that sends auth to registry's own server (never to its mirrors, which
// keep their hosts.toml credentials). release closes it. A client per
// authenticated call keeps one caller's credentials, and the tokens they
// earned, from ever serving another call.
func (cfg *Config) remoteFor(registry string, auth remote.Auth) (rc *remote.Client, release func()) {
	if auth.IsZero() {
		return cfg.Remote, func() {}
	}
	rcfg := cfg.RemoteConfig
	base := rcfg.Credentials
	rcfg.Credentials = remote.CredentialsFunc(func(ctx context.Context, host string) (remote.Auth, error) {
		if host == registry {
			return auth, nil
		}
		if base == nil {
			return remote.Auth{}, nil
		}
		return base.Credentials(ctx, host)
	})
	rc = remote.New(rcfg)
	return rc, func() { rc.Close() }
}

// explainAuth adds to a registry's refusal (401 or 403) whether the call
// brought credentials for registry.
func explainAuth(err error, registry string, auth remote.Auth) error {
	if !remote.IsUnauthorized(err) {
		return err
	}
	if auth.IsZero() {
		return fmt.Errorf("%w (no credentials were sent for %s: log in with \"berth login %s\")", err, registry, registry)
	}
	who := auth.Username
	if who == "" {
		who = "token"
	}
	return fmt.Errorf("%w (%s refused the credentials of %q: log in again with \"berth login %s\")", err, registry, who, registry)
}

// LabelDistributionSourcePrefix, followed by a registry ("docker.io"),
// labels a blob with the repositories of that registry known to hold it,
// comma-separated, most recent last. A pull and a push write it; a push
// to another repository of the registry asks it to mount the blob from
// there instead of uploading it.
const LabelDistributionSourcePrefix = "berth.io/distribution.source."

// maxSourceLabel bounds a distribution source label's value; the oldest
// repositories are dropped past it.
const maxSourceLabel = 1024

// withSource returns the value of ref's distribution source label given
// its current value, and whether it changed.
func withSource(current string, ref remote.Reference) (string, bool) {
	var repos []string
	if current != "" {
		repos = strings.Split(current, ",")
	}
	if slices.Contains(repos, ref.Repository) {
		return current, false
	}
	repos = append(repos, ref.Repository)
	v := strings.Join(repos, ",")
	for len(v) > maxSourceLabel && len(repos) > 1 {
		repos = repos[1:]
		v = strings.Join(repos, ",")
	}
	return v, true
}

// addSource records that ref's repository holds the blob dgst, whose
// current labels are labels.
func addSource(ctx context.Context, cs content.Manager, dgst digest.Digest, labels map[string]string, ref remote.Reference) error {
	key := LabelDistributionSourcePrefix + ref.Registry
	v, changed := withSource(labels[key], ref)
	if !changed {
		return nil
	}
	if _, err := cs.Update(ctx, content.Info{Digest: dgst, Labels: map[string]string{key: v}}, "labels."+key); err != nil {
		return fmt.Errorf("label %s with its source %s: %w", dgst, ref.Name(), err)
	}
	return nil
}

// mountSource returns the repository of ref's registry to mount a blob
// with labels from: "" when ref's own repository is known to hold it (the
// registry then has it) or no repository of the registry is.
func mountSource(labels map[string]string, ref remote.Reference) string {
	v := labels[LabelDistributionSourcePrefix+ref.Registry]
	if v == "" {
		return ""
	}
	repos := strings.Split(v, ",")
	if slices.Contains(repos, ref.Repository) {
		return ""
	}
	return repos[len(repos)-1]
}
