package remote

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
)

// dockerHubKey is the key Docker uses for Docker Hub in config.json and
// with credential helpers.
const dockerHubKey = "https://index.docker.io/v1/"

// DefaultDockerConfigPath is where the Docker CLI keeps its config:
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json. For cmd/ only;
// library code takes the path as an argument.
func DefaultDockerConfigPath() string {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".docker", "config.json")
	}
	return filepath.Join(home, ".docker", "config.json")
}

// DockerConfig reads and writes registry credentials in a Docker CLI
// config file (~/.docker/config.json): the "auths" entries ("auth" as
// base64 "user:password", or "username"/"password", "identitytoken",
// "registrytoken"), and credential helpers: "credHelpers" per host and
// "credsStore" for all, run as docker-credential-<name> from $PATH.
//
// It implements Credentials. The file is read on every lookup, so a login
// takes effect at once; a missing file means anonymous. Docker Hub's hosts
// (docker.io, index.docker.io, registry-1.docker.io) share Docker's key
// "https://index.docker.io/v1/". Safe for concurrent use; Save and Remove
// rewrite the file atomically, keeping the keys they do not know.
type DockerConfig struct {
	path string
	mu   sync.Mutex // serialises Save and Remove
}

// DockerConfigCredentials returns the credentials in the Docker config
// file at path (see DefaultDockerConfigPath).
func DockerConfigCredentials(path string) *DockerConfig {
	return &DockerConfig{path: path}
}

type dockerConfigFile struct {
	Auths       map[string]dockerAuthEntry `json:"auths"`
	CredsStore  string                     `json:"credsStore"`
	CredHelpers map[string]string          `json:"credHelpers"`
}

type dockerAuthEntry struct {
	Auth          string `json:"auth,omitempty"`
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// configKey is the config.json and helper key for host.
func configKey(host string) string {
	switch host {
	case DockerHub, "index.docker.io", "registry-1.docker.io", dockerHubKey:
		return dockerHubKey
	}
	return host
}

// keyHost reduces a config.json key ("https://host/v1/", "host") to
// host[:port], as the Docker CLI does.
func keyHost(key string) string {
	if key == dockerHubKey {
		return key
	}
	if i := strings.Index(key, "://"); i >= 0 {
		key = key[i+3:]
	}
	host, _, _ := strings.Cut(key, "/")
	return configKey(host)
}

func (d *DockerConfig) read() (*dockerConfigFile, error) {
	data, err := os.ReadFile(d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return &dockerConfigFile{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("docker config %q: %w: %w", d.path, err, errdefs.ErrFailedPrecondition)
	}
	var f dockerConfigFile
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("docker config %q: %v: %w", d.path, err, errdefs.ErrInvalidArgument)
		}
	}
	return &f, nil
}

// helper returns the credential helper configured for key, or "".
func (f *dockerConfigFile) helper(key string) string {
	for k, h := range f.CredHelpers {
		if keyHost(k) == key {
			return h
		}
	}
	return f.CredsStore
}

// Credentials returns the credentials stored for host: from its
// credential helper if one is configured and knows the host, else from
// the "auths" entries; the zero Auth if none.
func (d *DockerConfig) Credentials(ctx context.Context, host string) (Auth, error) {
	f, err := d.read()
	if err != nil {
		return Auth{}, err
	}
	key := configKey(host)
	if h := f.helper(key); h != "" {
		a, found, err := helperGet(ctx, h, key)
		if err != nil || found {
			return a, err
		}
	}
	for k, e := range f.Auths {
		if keyHost(k) != key {
			continue
		}
		a := Auth{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
		if e.Auth != "" {
			dec, err := decodeAuth(e.Auth)
			if err != nil {
				return Auth{}, fmt.Errorf("docker config %q: auths %q: auth: %v: %w", d.path, k, err, errdefs.ErrInvalidArgument)
			}
			a.Username, a.Password = dec.Username, dec.Password
		}
		if !a.IsZero() {
			return a, nil
		}
	}
	return Auth{}, nil
}

// Save stores credentials for host (for "berth login"): through the
// credential helper configured for it, else in the file's "auths". The
// file is created (mode 0600, directory 0700) if missing.
func (d *DockerConfig) Save(ctx context.Context, host string, a Auth) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.read()
	if err != nil {
		return err
	}
	key := configKey(host)
	entry := map[string]string{}
	if h := f.helper(key); h != "" {
		secret, user := a.Password, a.Username
		if a.IdentityToken != "" {
			secret, user = a.IdentityToken, "<token>"
		}
		if err := helperStore(ctx, h, key, user, secret); err != nil {
			return err
		}
	} else {
		if a.Username != "" || a.Password != "" {
			entry["auth"] = base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password))
		}
		if a.IdentityToken != "" {
			entry["identitytoken"] = a.IdentityToken
		}
		if a.RegistryToken != "" {
			entry["registrytoken"] = a.RegistryToken
		}
	}
	return d.update(func(auths map[string]json.RawMessage) {
		for k := range auths {
			if keyHost(k) == key {
				delete(auths, k)
			}
		}
		raw, _ := json.Marshal(entry)
		auths[key] = raw
	})
}

// Remove deletes the credentials for host (for "berth logout"), from its
// credential helper and from "auths". ErrNotFound if there were none.
func (d *DockerConfig) Remove(ctx context.Context, host string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.read()
	if err != nil {
		return err
	}
	key := configKey(host)
	found := false
	if h := f.helper(key); h != "" {
		erased, err := helperErase(ctx, h, key)
		if err != nil {
			return err
		}
		found = erased
	}
	for k := range f.Auths {
		if keyHost(k) == key {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("remove credentials for %s: %w", host, errdefs.ErrNotFound)
	}
	return d.update(func(auths map[string]json.RawMessage) {
		for k := range auths {
			if keyHost(k) == key {
				delete(auths, k)
			}
		}
	})
}

// update rewrites the file with fn applied to its "auths", keeping every
// other key as it was.
func (d *DockerConfig) update(fn func(auths map[string]json.RawMessage)) error {
	doc := map[string]json.RawMessage{}
	data, err := os.ReadFile(d.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("docker config %q: %w: %w", d.path, err, errdefs.ErrFailedPrecondition)
	case len(bytes.TrimSpace(data)) > 0:
		if err := json.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("docker config %q: %v: %w", d.path, err, errdefs.ErrInvalidArgument)
		}
	}
	auths := map[string]json.RawMessage{}
	if raw, ok := doc["auths"]; ok {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return fmt.Errorf("docker config %q: auths: %v: %w", d.path, err, errdefs.ErrInvalidArgument)
		}
	}
	fn(auths)
	raw, err := json.Marshal(auths)
	if err != nil {
		return err
	}
	doc["auths"] = raw
	out, err := json.MarshalIndent(doc, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(d.path), 0o700); err != nil {
		return fmt.Errorf("docker config %q: %w", d.path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(d.path), ".config.json-*")
	if err != nil {
		return fmt.Errorf("docker config %q: %w", d.path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(out, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("docker config %q: %w", d.path, err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("docker config %q: %w", d.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("docker config %q: %w", d.path, err)
	}
	if err := os.Rename(tmp.Name(), d.path); err != nil {
		return fmt.Errorf("docker config %q: %w", d.path, err)
	}
	return nil
}

// helperNotFound is the message credential helpers print for an unknown
// server (docker-credential-helpers' credentials.errCredentialsNotFound).
const helperNotFound = "credentials not found in native keychain"

// runHelper runs docker-credential-<name> <action> with stdin.
func runHelper(ctx context.Context, name, action string, stdin []byte) ([]byte, error) {
	prog := "docker-credential-" + name
	cmd := exec.CommandContext(ctx, prog, action)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("credential helper %s: not found in $PATH: %w", prog, errdefs.ErrFailedPrecondition)
		}
		msg := strings.TrimSpace(stdout.String() + " " + stderr.String())
		if strings.Contains(msg, helperNotFound) {
			return nil, errHelperNotFound
		}
		return nil, fmt.Errorf("credential helper %s %s: %v: %s: %w", prog, action, err, msg, errdefs.ErrUnavailable)
	}
	return stdout.Bytes(), nil
}

var errHelperNotFound = errors.New(helperNotFound)

type helperCreds struct {
	ServerURL string `json:"ServerURL"`
	Username  string `json:"Username"`
	Secret    string `json:"Secret"`
}

func helperGet(ctx context.Context, name, key string) (Auth, bool, error) {
	out, err := runHelper(ctx, name, "get", []byte(key))
	if errors.Is(err, errHelperNotFound) {
		return Auth{}, false, nil
	}
	if err != nil {
		return Auth{}, false, fmt.Errorf("credentials for %s: %w", key, err)
	}
	var c helperCreds
	if err := json.Unmarshal(out, &c); err != nil {
		return Auth{}, false, fmt.Errorf("credentials for %s: credential helper docker-credential-%s: decode answer: %v: %w", key, name, err, errdefs.ErrUnavailable)
	}
	if c.Username == "<token>" {
		return Auth{IdentityToken: c.Secret}, true, nil
	}
	return Auth{Username: c.Username, Password: c.Secret}, true, nil
}

func helperStore(ctx context.Context, name, key, user, secret string) error {
	in, _ := json.Marshal(helperCreds{ServerURL: key, Username: user, Secret: secret})
	if _, err := runHelper(ctx, name, "store", in); err != nil {
		return fmt.Errorf("store credentials for %s: %w", key, err)
	}
	return nil
}

func helperErase(ctx context.Context, name, key string) (bool, error) {
	_, err := runHelper(ctx, name, "erase", []byte(key))
	if errors.Is(err, errHelperNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove credentials for %s: %w", key, err)
	}
	return true, nil
}
