package remote

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/errdefs"
)

func writeDockerConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDockerConfigAuths(t *testing.T) {
	p := writeDockerConfig(t, `{
	"auths": {
		"https://index.docker.io/v1/": {"auth": "aHViLXVzZXI6aHViLXB3"},
		"registry.test:5000": {"username": "plain", "password": "pw"},
		"https://other.test/v1/": {"identitytoken": "refresh-me"},
		"http://tokened.test": {"registrytoken": "bearer-me"},
		"empty.test": {}
	},
	"proxies": {"default": {}}
}`)
	d := DockerConfigCredentials(p)
	tests := []struct {
		host string
		want Auth
	}{
		{"docker.io", Auth{Username: "hub-user", Password: "hub-pw"}},
		{"registry-1.docker.io", Auth{Username: "hub-user", Password: "hub-pw"}},
		{"index.docker.io", Auth{Username: "hub-user", Password: "hub-pw"}},
		{"registry.test:5000", Auth{Username: "plain", Password: "pw"}},
		{"registry.test", Auth{}},
		{"other.test", Auth{IdentityToken: "refresh-me"}},
		{"tokened.test", Auth{RegistryToken: "bearer-me"}},
		{"empty.test", Auth{}},
		{"missing.test", Auth{}},
	}
	for _, tt := range tests {
		got, err := d.Credentials(context.Background(), tt.host)
		if err != nil {
			t.Errorf("%s: %v", tt.host, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.host, got, tt.want)
		}
	}
}

func TestDockerConfigMissingOrBadFile(t *testing.T) {
	d := DockerConfigCredentials(filepath.Join(t.TempDir(), "nope", "config.json"))
	if a, err := d.Credentials(context.Background(), "docker.io"); err != nil || !a.IsZero() {
		t.Errorf("missing file: %+v, %v", a, err)
	}
	p := writeDockerConfig(t, `{"auths": `)
	_, err := DockerConfigCredentials(p).Credentials(context.Background(), "docker.io")
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), p) {
		t.Errorf("bad file: %v", err)
	}
}

func TestDockerConfigSaveAndRemoveKeepOtherKeys(t *testing.T) {
	p := writeDockerConfig(t, `{"auths": {"keep.test": {"auth": "azpw"}}, "proxies": {"default": {"httpProxy": "http://p:3128"}}, "detachKeys": "ctrl-x"}`)
	d := DockerConfigCredentials(p)
	ctx := context.Background()
	if err := d.Save(ctx, "docker.io", Auth{Username: "me", Password: "secret"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Credentials(ctx, "registry-1.docker.io"); got != (Auth{Username: "me", Password: "secret"}) {
		t.Errorf("after save: %+v", got)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v", fi.Mode(), err)
	}
	var doc map[string]any
	data, _ := os.ReadFile(p)
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"auths": map[string]any{
			"keep.test":                   map[string]any{"auth": "azpw"},
			"https://index.docker.io/v1/": map[string]any{"auth": "bWU6c2VjcmV0"},
		},
		"proxies":    map[string]any{"default": map[string]any{"httpProxy": "http://p:3128"}},
		"detachKeys": "ctrl-x",
	}
	if diff := cmp.Diff(want, doc); diff != "" {
		t.Errorf("file (-want +got):\n%s", diff)
	}

	if err := d.Remove(ctx, "docker.io"); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Credentials(ctx, "docker.io"); !got.IsZero() {
		t.Errorf("after remove: %+v", got)
	}
	if err := d.Remove(ctx, "docker.io"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}

	fresh := DockerConfigCredentials(filepath.Join(t.TempDir(), "sub", "config.json"))
	if err := fresh.Save(ctx, "new.test", Auth{Username: "a", Password: "b"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := fresh.Credentials(ctx, "new.test"); got != (Auth{Username: "a", Password: "b"}) {
		t.Errorf("fresh file: %+v", got)
	}
}

// fakeHelper is a docker-credential-testhelper script keeping one file per
// server under a temporary directory, speaking the helper protocol (errors
// on stdout, as docker-credential-helpers' credentials.Serve prints them).
const fakeHelper = `#!/bin/sh
key() { printf '%s' "$1" | tr -c 'a-zA-Z0-9.' '_'; }
case "$1" in
get)
	read -r server
	[ "$server" = "broken.test" ] && { echo "keychain is locked"; exit 1; }
	f="$HELPER_STORE/$(key "$server")"
	if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store)
	cat > "$HELPER_STORE/incoming"
	server=$(sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p' "$HELPER_STORE/incoming")
	mv "$HELPER_STORE/incoming" "$HELPER_STORE/$(key "$server")" ;;
erase)
	read -r server
	f="$HELPER_STORE/$(key "$server")"
	if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
esac
`

func installFakeHelper(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-testhelper"), []byte(fakeHelper), 0o755); err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("HELPER_STORE", store)
	return store
}

func TestDockerConfigCredentialHelper(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh")
	}
	store := installFakeHelper(t)
	p := writeDockerConfig(t, `{"credHelpers": {"registry.test": "testhelper", "broken.test": "testhelper", "gone.test": "missing-helper"}, "credsStore": "testhelper"}`)
	d := DockerConfigCredentials(p)
	ctx := context.Background()

	if a, err := d.Credentials(ctx, "registry.test"); err != nil || !a.IsZero() {
		t.Errorf("before login: %+v, %v", a, err)
	}
	if err := d.Save(ctx, "registry.test", Auth{Username: "robot", Password: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	if a, err := d.Credentials(ctx, "registry.test"); err != nil || a != (Auth{Username: "robot", Password: "s3cret"}) {
		t.Errorf("after login: %+v, %v", a, err)
	}
	// credsStore covers hosts without their own helper; identity tokens
	// travel as user "<token>".
	if err := d.Save(ctx, "docker.io", Auth{IdentityToken: "refresh"}); err != nil {
		t.Fatal(err)
	}
	if a, err := d.Credentials(ctx, "registry-1.docker.io"); err != nil || a != (Auth{IdentityToken: "refresh"}) {
		t.Errorf("hub via credsStore: %+v, %v", a, err)
	}
	entries, _ := os.ReadDir(store)
	if len(entries) != 2 {
		t.Errorf("helper store has %d entries, want 2", len(entries))
	}
	data, _ := os.ReadFile(p)
	if strings.Contains(string(data), "s3cret") {
		t.Errorf("secret written to the config file: %s", data)
	}

	if err := d.Remove(ctx, "registry.test"); err != nil {
		t.Fatal(err)
	}
	if a, _ := d.Credentials(ctx, "registry.test"); !a.IsZero() {
		t.Errorf("after logout: %+v", a)
	}

	_, err := d.Credentials(ctx, "broken.test")
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "keychain is locked") {
		t.Errorf("broken helper: %v", err)
	}
	_, err = d.Credentials(ctx, "gone.test")
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "docker-credential-missing-helper") {
		t.Errorf("missing helper: %v", err)
	}
}
