package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
)

func TestPushUsage(t *testing.T) {
	sock := noDaemon(t)
	for _, args := range [][]string{{"push"}, {"push", "a", "b", "c"}, {"image", "push"}} {
		code, _, stderr := runBerth(t, append([]string{"--address", sock}, args...)...)
		if code != exitUsage || !strings.Contains(stderr, "requires 1 or 2 arguments") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

func TestProgressViewShowsPushPhases(t *testing.T) {
	var out bytes.Buffer
	v := newProgressView(&out, false)
	d := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, p := range []client.PushProgress{
		{Kind: "layer", Digest: d, Phase: "waiting", Total: 100},
		{Kind: "layer", Digest: d, Phase: "uploading", Total: 100},
		{Kind: "layer", Digest: d, Phase: "uploading", Offset: 50, Total: 100},
		{Kind: "layer", Digest: d, Phase: "done", Offset: 100, Total: 100},
		{Kind: "config", Digest: d, Phase: "mounted", Offset: 10, Total: 10},
	} {
		v.updatePush(p)
	}
	v.finish()
	want := "layer 0123456789ab: waiting\nlayer 0123456789ab: uploading\nlayer 0123456789ab: done\nconfig 0123456789ab: mounted\n"
	if out.String() != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", out.String(), want)
	}

	start := time.Unix(100, 0)
	line := itemLine(client.PullProgress{Kind: "layer", Digest: d, Phase: "uploading", Offset: 5 << 20, Total: 10 << 20}, start, 0, start.Add(time.Second))
	if !strings.Contains(line, "uploading   [===============>") || !strings.Contains(line, "5 MiB / 10 MiB") || !strings.HasSuffix(line, "5 MiB/s") {
		t.Errorf("uploading line %q", line)
	}
	if line := itemLine(client.PullProgress{Kind: "layer", Digest: d, Phase: "mounted", Offset: 10, Total: 10}, start, 0, start); strings.Contains(line, "[") {
		t.Errorf("a mounted layer has a bar: %q", line)
	}
}

func TestRegistryAuthReadsTheDockerConfig(t *testing.T) {
	dockerConfig, _ := remoteEnv(t)
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	if err := os.WriteFile(dockerConfig, []byte(`{"auths":{"reg.example:5000":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := registryAuth(ctx, "reg.example:5000/team/app:v1")
	if err != nil || got != (client.RegistryAuth{Username: "alice", Password: "s3cret"}) {
		t.Errorf("credentials for reg.example:5000: %+v, %v", got, err)
	}
	if got, err := registryAuth(ctx, "other.example/app"); err != nil || got != (client.RegistryAuth{}) {
		t.Errorf("credentials for another registry: %+v, %v", got, err)
	}
	if got, err := registryAuth(ctx, "UPPER/case"); err != nil || got != (client.RegistryAuth{}) {
		t.Errorf("credentials for a malformed reference: %+v, %v", got, err)
	}
}
