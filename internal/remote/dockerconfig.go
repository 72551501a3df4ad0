package remote

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/credentials"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/berth-dev/berth/internal/errdefs"
)

// DefaultDockerConfigPath is where the Docker CLI keeps its config:
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json. For cmd/ only;
// library code takes the path as an argument.
func DefaultDockerConfigPath() string {
	return filepath.Join(config.Dir(), config.ConfigFileName)
}

// DockerConfig reads and writes registry credentials in a Docker CLI
// config file (~/.docker/config.json) with the Docker CLI's own code
// (github.com/docker/cli/cli/config, which go-containerregistry's
// authn.DefaultKeychain reads with too): the "auths" entries, and
// credential helpers, "credHelpers" per host and "credsStore" for all, run
// as docker-credential-<name> from $PATH.
//
// It implements Credentials. The file is read on every lookup, so a login
// takes effect at once; a missing file means anonymous. Docker Hub's hosts
// (docker.io, index.docker.io, registry-1.docker.io) share Docker's key
// "https://index.docker.io/v1/". Safe for concurrent use; Save and Remove
// rewrite the file atomically. Credential helpers run to completion: ctx
// does not stop them.
type DockerConfig struct {
	path string
	mu   sync.Mutex // serialises Save and Remove
}

// DockerConfigCredentials returns the credentials in the Docker config
// file at path (see DefaultDockerConfigPath).
func DockerConfigCredentials(path string) *DockerConfig {
	return &DockerConfig{path: path}
}

// configKey is the config.json and helper key for host.
func configKey(host string) string {
	switch host {
	case DockerHub, "index.docker.io", "registry-1.docker.io":
		return authn.DefaultAuthKey
	}
	return host
}

func (d *DockerConfig) load() (*configfile.ConfigFile, error) {
	cf := configfile.New(d.path)
	f, err := os.Open(d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return cf, nil
	}
	if err != nil {
		return nil, fmt.Errorf("docker config %q: %w: %w", d.path, err, errdefs.ErrFailedPrecondition)
	}
	defer f.Close()
	if err := cf.LoadFromReader(f); err != nil {
		return nil, fmt.Errorf("docker config %q: %v: %w", d.path, err, errdefs.ErrInvalidArgument)
	}
	return cf, nil
}

// store returns the credentials store for key: its credential helper, or
// the file. A configured helper that is not in $PATH is
// ErrFailedPrecondition.
func (d *DockerConfig) store(cf *configfile.ConfigFile, key string) (credentials.Store, bool, error) {
	helper := cf.CredentialHelpers[key]
	if helper == "" {
		helper = cf.CredentialsStore
	}
	if helper != "" {
		if _, err := exec.LookPath("docker-credential-" + helper); err != nil {
			return nil, false, fmt.Errorf("docker config %q: credential helper docker-credential-%s: not found in $PATH: %w", d.path, helper, errdefs.ErrFailedPrecondition)
		}
	}
	return cf.GetCredentialsStore(key), helper != "", nil
}

// Credentials returns the credentials stored for host, as the Docker CLI
// finds them; the zero Auth if none.
func (d *DockerConfig) Credentials(_ context.Context, host string) (Auth, error) {
	cf, err := d.load()
	if err != nil {
		return Auth{}, err
	}
	key := configKey(host)
	s, _, err := d.store(cf, key)
	if err != nil {
		return Auth{}, err
	}
	ac, err := s.Get(key)
	if err != nil {
		return Auth{}, fmt.Errorf("docker config %q: credentials for %s: %v: %w", d.path, key, err, errdefs.ErrUnavailable)
	}
	return Auth{Username: ac.Username, Password: ac.Password, IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}, nil
}

// Save stores credentials for host (for "berth login"): through the
// credential helper configured for it, else in the file's "auths". The
// file is created (mode 0600, directory 0700) if missing.
func (d *DockerConfig) Save(_ context.Context, host string, a Auth) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cf, err := d.load()
	if err != nil {
		return err
	}
	key := configKey(host)
	s, _, err := d.store(cf, key)
	if err != nil {
		return err
	}
	ac := types.AuthConfig{ServerAddress: key, Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
	if err := s.Store(ac); err != nil {
		return fmt.Errorf("docker config %q: store credentials for %s: %v: %w", d.path, key, err, errdefs.ErrUnavailable)
	}
	return nil
}

// Remove deletes the credentials for host (for "berth logout"), from its
// credential helper and from "auths", under every spelling of the host.
// ErrNotFound if there were none.
func (d *DockerConfig) Remove(_ context.Context, host string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cf, err := d.load()
	if err != nil {
		return err
	}
	key := configKey(host)
	s, helper, err := d.store(cf, key)
	if err != nil {
		return err
	}
	ac, err := s.Get(key)
	if err != nil {
		return fmt.Errorf("docker config %q: credentials for %s: %v: %w", d.path, key, err, errdefs.ErrUnavailable)
	}
	inHelper := helper && (ac.Username != "" || ac.IdentityToken != "")
	var keys []string
	for k := range cf.AuthConfigs {
		if configKey(credentials.ConvertToHostname(k)) == key {
			keys = append(keys, k)
		}
	}
	if !inHelper && len(keys) == 0 {
		return fmt.Errorf("remove credentials for %s: %w", host, errdefs.ErrNotFound)
	}
	if inHelper {
		if err := s.Erase(key); err != nil {
			return fmt.Errorf("docker config %q: remove credentials for %s: %v: %w", d.path, key, err, errdefs.ErrUnavailable)
		}
	}
	for _, k := range keys {
		delete(cf.AuthConfigs, k)
	}
	if err := cf.Save(); err != nil {
		return fmt.Errorf("docker config %q: %w", d.path, err)
	}
	return nil
}
