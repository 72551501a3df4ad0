package remote

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
)

// DockerHub is the registry name references without a registry part
// normalise to.
const DockerHub = "docker.io"

// maxNameLength is the longest registry/repository name accepted, as in the
// distribution reference grammar.
const maxNameLength = 255

var (
	pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	tagPattern    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	domainLabel   = regexp.MustCompile(`^(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])$`)
	portPattern   = regexp.MustCompile(`^[0-9]+$`)
	ipv6Pattern   = regexp.MustCompile(`^\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9]+)?\]$`)
)

// Reference names an image in a registry, normalised the way Docker does:
// "busybox" is Registry "docker.io", Repository "library/busybox", Tag
// "latest".
//
// When Digest is set it identifies the object and Tag (if any) is kept only
// for display and for naming the image locally.
type Reference struct {
	Registry   string        // host[:port], e.g. "docker.io", "localhost:5000", "[::1]:5000"
	Repository string        // path within the registry, e.g. "library/busybox"
	Tag        string        // e.g. "latest"; empty when the reference has only a digest
	Digest     digest.Digest // e.g. "sha256:…"; empty for a tag reference
}

// ParseReference parses s as an image reference and normalises it: a missing
// registry is docker.io, a single-component Docker Hub repository gets
// "library/", "index.docker.io" becomes "docker.io", and a reference with
// neither tag nor digest gets the tag "latest". Malformed references fail
// with ErrInvalidArgument, quoting s and saying what is wrong.
func ParseReference(s string) (Reference, error) {
	ref, err := parseReference(s)
	if err != nil {
		return Reference{}, fmt.Errorf("reference %q: %s: %w", s, err, errdefs.ErrInvalidArgument)
	}
	return ref, nil
}

// refError is a parse problem; ParseReference adds the input and the kind.
type refError string

func (e refError) Error() string { return string(e) }

func parseReference(s string) (Reference, error) {
	if s == "" {
		return Reference{}, refError("empty reference")
	}
	if strings.TrimSpace(s) != s {
		return Reference{}, refError("leading or trailing white space")
	}
	var ref Reference
	name := s
	if i := strings.IndexByte(name, '@'); i >= 0 {
		d := name[i+1:]
		name = name[:i]
		if d == "" {
			return Reference{}, refError("empty digest after '@'")
		}
		dg, err := digest.Parse(d)
		if err != nil {
			return Reference{}, refError(fmt.Sprintf("invalid digest %q: %v", d, err))
		}
		ref.Digest = dg
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		tag := name[i+1:]
		name = name[:i]
		if tag == "" {
			return Reference{}, refError("empty tag after ':'")
		}
		if !tagPattern.MatchString(tag) {
			return Reference{}, refError(fmt.Sprintf("invalid tag %q: a tag is 1 to 128 letters, digits, '_', '.' or '-' and does not start with '.' or '-'", tag))
		}
		ref.Tag = tag
	}
	if name == "" {
		return Reference{}, refError("empty repository name")
	}
	if len(name) > maxNameLength {
		return Reference{}, refError(fmt.Sprintf("name is %d characters long, over the limit of %d", len(name), maxNameLength))
	}

	registry, repo := DockerHub, name
	if i := strings.IndexByte(name, '/'); i >= 0 {
		first := name[:i]
		if strings.ContainsAny(first, ".:[") || first == "localhost" || strings.ToLower(first) != first {
			registry, repo = first, name[i+1:]
		}
	}
	if registry == "index.docker.io" {
		registry = DockerHub
	}
	if err := validateRegistry(registry); err != nil {
		return Reference{}, err
	}
	if err := validateRepository(repo); err != nil {
		return Reference{}, err
	}
	if registry == DockerHub && !strings.Contains(repo, "/") {
		repo = "library/" + repo
	}
	ref.Registry, ref.Repository = registry, repo
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = "latest"
	}
	return ref, nil
}

func validateRegistry(host string) error {
	name, port := host, ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return refError(fmt.Sprintf("invalid registry %q: unterminated IPv6 address", host))
		}
		name, port = host[:end+1], strings.TrimPrefix(host[end+1:], ":")
		if !ipv6Pattern.MatchString(name) {
			return refError(fmt.Sprintf("invalid registry %q: bad IPv6 address", host))
		}
		if port == "" && len(host) > end+1 {
			return refError(fmt.Sprintf("invalid registry %q: empty port", host))
		}
	} else {
		if i := strings.IndexByte(host, ':'); i >= 0 {
			name, port = host[:i], host[i+1:]
			if port == "" {
				return refError(fmt.Sprintf("invalid registry %q: empty port", host))
			}
		}
		for _, label := range strings.Split(name, ".") {
			if !domainLabel.MatchString(label) {
				return refError(fmt.Sprintf("invalid registry %q: host name labels are letters, digits and inner '-'", host))
			}
		}
	}
	if port != "" && !portPattern.MatchString(port) {
		return refError(fmt.Sprintf("invalid registry %q: port %q is not a number", host, port))
	}
	return nil
}

func validateRepository(repo string) error {
	if repo == "" {
		return refError("empty repository name")
	}
	if strings.ToLower(repo) != repo {
		return refError(fmt.Sprintf("repository %q must be lowercase", repo))
	}
	for _, c := range strings.Split(repo, "/") {
		if c == "" {
			return refError(fmt.Sprintf("repository %q has an empty path component", repo))
		}
		if !pathComponent.MatchString(c) {
			return refError(fmt.Sprintf("repository %q: path component %q must be lowercase letters and digits, separated by '.', '_', '__' or dashes", repo, c))
		}
	}
	return nil
}

// Name is the registry and repository: "docker.io/library/busybox".
func (r Reference) Name() string { return r.Registry + "/" + r.Repository }

// String is the full normalised reference:
// "docker.io/library/busybox:latest", "localhost:5000/x@sha256:…".
func (r Reference) String() string { return r.Name() + r.suffix() }

// Familiar is the short form Docker shows: "busybox:latest",
// "user/app:1.0", "localhost:5000/x@sha256:…".
func (r Reference) Familiar() string {
	name := r.Name()
	if r.Registry == DockerHub {
		name = strings.TrimPrefix(r.Repository, "library/")
		if strings.Contains(name, "/") && strings.HasPrefix(r.Repository, "library/") {
			name = r.Repository
		}
	}
	return name + r.suffix()
}

func (r Reference) suffix() string {
	var b strings.Builder
	if r.Tag != "" {
		b.WriteString(":" + r.Tag)
	}
	if r.Digest != "" {
		b.WriteString("@" + r.Digest.String())
	}
	return b.String()
}

// Object is what the registry resolves: the digest when set, else the tag.
func (r Reference) Object() string {
	if r.Digest != "" {
		return r.Digest.String()
	}
	return r.Tag
}

// WithDigest returns a copy of r pinned to d (the tag is kept for display).
func (r Reference) WithDigest(d digest.Digest) Reference {
	r.Digest = d
	return r
}
