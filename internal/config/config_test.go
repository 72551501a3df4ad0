package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/go-cmp/cmp"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultRoundTrips(t *testing.T) {
	var buf bytes.Buffer
	if err := Encode(&buf, Default()); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(write(t, buf.String()), false)
	if err != nil {
		t.Fatalf("the printed default does not load: %v\n%s", err, buf.String())
	}
	if diff := cmp.Diff(Default(), cfg); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOverridesDefaults(t *testing.T) {
	cfg, err := Load(write(t, "version = 1\nroot = \"/srv/berth\"\n[gc]\ndelay = \"2s\"\n[metrics]\naddress = \"127.0.0.1:9323\"\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Root != "/srv/berth" || time.Duration(cfg.GC.Delay) != 2*time.Second || cfg.State != "/run/berth" || cfg.Metrics.Address != "127.0.0.1:9323" {
		t.Errorf("cfg = %+v", cfg)
	}
}

func TestLoadMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.toml")
	if _, err := Load(missing, true); err != nil {
		t.Errorf("missing default file: %v", err)
	}
	if _, err := Load(missing, false); err == nil {
		t.Error("missing named file accepted")
	}
}

func TestLoadRejectsBadInput(t *testing.T) {
	tests := []struct {
		body, want string
	}{
		{"version = 1\nrooot = \"/x\"\n", "unknown key rooot"},
		{"version = 1\n[gc]\nfrequency = 3\n", "unknown key gc.frequency"},
		{"version = 2\n", "version: 2 is not supported"},
		{"version = 1\nroot = \"relative\"\n", "root: must be an absolute path"},
		{"version = 1\nlog_level = \"loud\"\n", "log_level"},
		{"version = 1\n[gc]\ndelay = \"soon\"\n", "not a duration"},
		{"version = 1\n[content]\nsharing = \"open\"\n", "content.sharing"},
		{"version = 1\nroot = 3\n", "line 2"},
		{"version = \n", "line 1"},
		{"version = 1\n[metrics]\naddress = \"9323\"\n", "metrics.address"},
		{"version = 1\n[snapshotter]\nname = \"zfs\"\n", "snapshotter.name"},
		{"version = 1\n[registry]\nmax_concurrent_downloads = 0\n", "registry.max_concurrent_downloads"},
	}
	for _, tt := range tests {
		p := write(t, tt.body)
		_, err := Load(p, false)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("Load(%q) = %v, want an invalid-argument error naming %s and containing %q", tt.body, err, p, tt.want)
		}
	}
}
