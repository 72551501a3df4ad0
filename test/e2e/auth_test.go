package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/internal/testutil"
)

// writeHtpasswd writes an htpasswd file with one bcrypt entry, which is
// all docker-registry accepts. The hash comes from crypt(3) (libxcrypt
// does bcrypt) through perl, which every Debian system has.
func writeHtpasswd(t *testing.T, user, password string) string {
	t.Helper()
	testutil.RequireBinary(t, "perl")
	const alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	salt := make([]byte, 22)
	if _, err := rand.Read(salt); err != nil {
		t.Fatal(err)
	}
	for i := range salt {
		salt[i] = alphabet[int(salt[i])%len(alphabet)]
	}
	out, err := exec.Command("perl", "-e", "print crypt($ARGV[0], $ARGV[1])", password, "$2b$05$"+string(salt)).Output()
	if err != nil || !strings.HasPrefix(string(out), "$2b$05$") {
		t.Fatalf("bcrypt through perl crypt: %q, %v", out, err)
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte(user+":"+string(out)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeDockerConfig saves credentials for host in the Docker config file
// of the CLI runs (DOCKER_CONFIG), as if `berth login` had saved them.
func writeDockerConfig(t *testing.T, host, user, password string) {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	cfg := `{"auths":{"` + host + `":{"auth":"` + auth + `"}}}`
	if err := os.WriteFile(filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// nothingIn fails t if namespace ns holds an image or a blob (a
// namespace that does not exist holds nothing).
func nothingIn(t *testing.T, d *daemon, ns string) {
	t.Helper()
	c := d.client(ns)
	imgs, err := c.ListImages(context.Background())
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		t.Fatal(err)
	}
	blobs, err := c.ListBlobs(context.Background())
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		t.Fatal(err)
	}
	if len(imgs) != 0 || len(blobs) != 0 {
		t.Errorf("namespace %s holds %d images and %d blobs after a refused pull", ns, len(imgs), len(blobs))
	}
}

func TestRegistryWithBasicAuth(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	d := newDaemon(t)
	d.start()
	src := busyboxRef(t)
	d.berth(nil, "pull", "-q", src).ok(t)
	host := testutil.StartRegistry(t, writeHtpasswd(t, "alice", "s3cret"))
	ref := host + "/private/busybox:v1"

	// Without credentials the registry refuses the push, and says why.
	d.berth(nil, "push", src, ref).fails(t, 1, "no credentials were sent for "+host)

	// A wrong password is refused at login and not saved.
	d.berth([]byte("wrong\n"), "login", host, "-u", "alice", "--password-stdin").fails(t, 1, "incorrect username or password")
	if _, err := os.Stat(filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused login wrote the config file: %v", err)
	}
	if out := d.berth([]byte("s3cret\n"), "login", host, "-u", "alice", "--password-stdin").ok(t); !strings.Contains(out, "Login Succeeded") {
		t.Errorf("login output %q", out)
	}

	// Logged in, push and pull work.
	out := d.berth(nil, "push", src, ref).ok(t)
	if !strings.Contains(out, ref+": pushed sha256:") {
		t.Errorf("push output %q", out)
	}
	d.berth(nil, "-n", "alice", "pull", "-q", ref).ok(t)
	if got, want := imageDigest(t, d, "alice", ref), imageDigest(t, d, "default", src); got != want {
		t.Errorf("pulled %s, pushed %s", got, want)
	}

	// Logged out, the pull is refused with a clear error, and nothing of
	// it is left: the daemon kept no credentials from the earlier calls.
	d.berth(nil, "logout", host).ok(t)
	r := d.berth(nil, "-n", "anon", "pull", ref)
	r.fails(t, 1, "unauthorized (401)")
	r.fails(t, 1, "no credentials were sent for "+host)
	nothingIn(t, d, "anon")
	if _, err := d.client("anon").GetImage(context.Background(), ref); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("image recorded by a refused pull: %v", err)
	}

	// A stale password in the config file is refused too, by name.
	writeDockerConfig(t, host, "alice", "stale")
	d.berth(nil, "-n", "stale", "pull", ref).fails(t, 1, `refused the credentials of "alice"`)
	nothingIn(t, d, "stale")
	d.berth(nil, "push", src, host+"/private/other:v1").fails(t, 1, `refused the credentials of "alice"`)
}
