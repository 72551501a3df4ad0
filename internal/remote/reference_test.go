package remote

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

const testDigest = "sha256:7d246653d0511db2a6b2e0436cfd0e52ac8c066000264b3ce63331ac66dca625"

func TestParseReferenceNormalises(t *testing.T) {
	tests := []struct {
		in       string
		registry string
		repo     string
		tag      string
		digest   string
		str      string
		familiar string
	}{
		{"busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest", "busybox:latest"},
		{"busybox:1.36", "docker.io", "library/busybox", "1.36", "", "docker.io/library/busybox:1.36", "busybox:1.36"},
		{"user/app", "docker.io", "user/app", "latest", "", "docker.io/user/app:latest", "user/app:latest"},
		{"docker.io/busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest", "busybox:latest"},
		{"index.docker.io/library/busybox:x", "docker.io", "library/busybox", "x", "", "docker.io/library/busybox:x", "busybox:x"},
		{"localhost/app", "localhost", "app", "latest", "", "localhost/app:latest", "localhost/app:latest"},
		{"localhost:5000/x", "localhost:5000", "x", "latest", "", "localhost:5000/x:latest", "localhost:5000/x:latest"},
		{"127.0.0.1:5000/a/b/c:v1", "127.0.0.1:5000", "a/b/c", "v1", "", "127.0.0.1:5000/a/b/c:v1", "127.0.0.1:5000/a/b/c:v1"},
		{"[::1]:5000/x:y", "[::1]:5000", "x", "y", "", "[::1]:5000/x:y", "[::1]:5000/x:y"},
		{"ghcr.io/org/app-name_x.y__z:1.0_rc-1", "ghcr.io", "org/app-name_x.y__z", "1.0_rc-1", "", "ghcr.io/org/app-name_x.y__z:1.0_rc-1", "ghcr.io/org/app-name_x.y__z:1.0_rc-1"},
		{"Registry.Example.com/app", "Registry.Example.com", "app", "latest", "", "Registry.Example.com/app:latest", "Registry.Example.com/app:latest"},
		{"busybox@" + testDigest, "docker.io", "library/busybox", "", testDigest, "docker.io/library/busybox@" + testDigest, "busybox@" + testDigest},
		{"busybox:1.36@" + testDigest, "docker.io", "library/busybox", "1.36", testDigest, "docker.io/library/busybox:1.36@" + testDigest, "busybox:1.36@" + testDigest},
		{"localhost:5000/x@" + testDigest, "localhost:5000", "x", "", testDigest, "localhost:5000/x@" + testDigest, "localhost:5000/x@" + testDigest},
		{"library/foo/bar", "docker.io", "library/foo/bar", "latest", "", "docker.io/library/foo/bar:latest", "library/foo/bar:latest"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ref, err := ParseReference(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if ref.Registry != tt.registry || ref.Repository != tt.repo || ref.Tag != tt.tag || ref.Digest.String() != tt.digest {
				t.Errorf("got %+v", ref)
			}
			if got := ref.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			if got := ref.Familiar(); got != tt.familiar {
				t.Errorf("Familiar() = %q, want %q", got, tt.familiar)
			}
			again, err := ParseReference(ref.String())
			if err != nil || again != ref {
				t.Errorf("reparse of %q: %+v, %v", ref.String(), again, err)
			}
		})
	}
}

func TestParseReferenceObjectIsDigestWhenPinned(t *testing.T) {
	ref := mustParse(t, "busybox:1.36@"+testDigest)
	if ref.Object() != testDigest {
		t.Errorf("Object() = %q", ref.Object())
	}
	if mustParse(t, "busybox:1.36").Object() != "1.36" {
		t.Error("tag reference should resolve its tag")
	}
}

func TestParseReferenceRejects(t *testing.T) {
	tests := []struct {
		in   string
		want string // part of the message
	}{
		{"", "empty reference"},
		{" busybox", "white space"},
		{"Busybox/App", "must be lowercase"},
		{"docker.io/Library/busybox", "must be lowercase"},
		{"busybox:", "empty tag"},
		{"busybox:bad!tag", `invalid tag "bad!tag"`},
		{"busybox:.hidden", `invalid tag ".hidden"`},
		{"busybox:" + strings.Repeat("t", 129), "invalid tag"},
		{"busybox@", "empty digest"},
		{"busybox@sha256:abc", `invalid digest "sha256:abc"`},
		{"busybox@md5:d41d8cd98f00b204e9800998ecf8427e", "invalid digest"},
		{"busybox@" + strings.ToUpper(testDigest), "invalid digest"},
		{"a//b", "empty path component"},
		{"a/b/", "empty path component"},
		{"app-/x", `path component "app-"`},
		{"_app", `path component "_app"`},
		{"localhost:/x", "empty port"},
		{"localhost:abc/x", "is not a number"},
		{"bad_host.com/x", "invalid registry"},
		{"-bad.com/x", "invalid registry"},
		{"[::1/x", "unterminated IPv6"},
		{"example.com/" + strings.Repeat("a", 250), "over the limit of 255"},
		{":tag", "empty repository name"},
		{"example.com/", "empty repository name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseReference(tt.in)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %v is not ErrInvalidArgument", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not say %q", msg, tt.want)
			}
			if !strings.HasPrefix(msg, "reference "+strconv.Quote(tt.in)) {
				t.Errorf("error %q does not quote the input", msg)
			}
		})
	}
}
