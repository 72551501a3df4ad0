package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

// MaxManifestSize is the largest manifest or index Resolve, Fetch and Push
// accept (4 MiB, as containerd and the distribution spec's guidance).
const MaxManifestSize = 4 << 20

// The manifest media types berth accepts.
const (
	MediaTypeDockerManifest     = string(types.DockerManifestSchema2)
	MediaTypeDockerManifestList = string(types.DockerManifestList)
)

var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageManifest,
	ocispec.MediaTypeImageIndex,
	MediaTypeDockerManifest,
	MediaTypeDockerManifestList,
	"*/*;q=0.1", // so a registry holding only something else says what, and we can explain
}, ", ")

// IsManifest reports whether mediaType is a manifest Resolve accepts (OCI
// or Docker schema 2 image manifest).
func IsManifest(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageManifest || mediaType == MediaTypeDockerManifest
}

// IsIndex reports whether mediaType is an OCI index or a Docker manifest
// list.
func IsIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == MediaTypeDockerManifestList
}

func isSchema1(mediaType string) bool {
	return mediaType == string(types.DockerManifestSchema1) || mediaType == string(types.DockerManifestSchema1Signed)
}

// isManifestObject reports whether desc lives under /manifests/ rather
// than /blobs/.
func isManifestObject(mediaType string) bool {
	return IsManifest(mediaType) || IsIndex(mediaType) || isSchema1(mediaType)
}

// Resolve finds the manifest or index ref names, trying the hosts with the
// resolve capability in order. name is ref in canonical form
// ("docker.io/library/busybox:latest"); desc has the media type, digest and
// size of what the registry holds. A HEAD request is enough when the
// registry gives type, digest and size; otherwise the manifest is fetched
// and hashed.
//
// Errors: ErrNotFound for an unknown repository, tag or digest (naming ref);
// ErrNotImplemented for Docker schema 1 and unknown media types;
// ErrInvalidArgument for manifests over MaxManifestSize; ErrUnavailable for
// an HTML page or another non-manifest answer; *Error for other registry
// answers.
func (c *Client) Resolve(ctx context.Context, ref Reference) (name string, desc ocispec.Descriptor, err error) {
	hosts, err := c.hostsFor(ctx, ref.Registry, CapResolve)
	if err != nil {
		return "", ocispec.Descriptor{}, fmt.Errorf("resolve %q: %w", ref.String(), err)
	}
	err = c.failover(ctx, fmt.Sprintf("resolve %q", ref.String()), hosts, func(_ int, p HostPlan) error {
		d, err := c.resolveHost(ctx, p, ref)
		desc = d
		return err
	})
	if err != nil {
		return "", ocispec.Descriptor{}, err
	}
	return ref.String(), desc, nil
}

func (c *Client) resolveHost(ctx context.Context, p HostPlan, ref Reference) (ocispec.Descriptor, error) {
	rq := request{
		method: http.MethodHead,
		path:   "/" + ref.Repository + "/manifests/" + ref.Object(),
		header: http.Header{"Accept": {manifestAccept}},
		scopes: []string{repositoryScope(ref.Repository, "pull")},
	}
	resp, err := c.do(ctx, p, rq)
	if err == nil {
		resp.Body.Close()
		desc, ok, err := descFromHeaders(p, ref, resp)
		if err != nil || ok {
			return desc, err
		}
	} else {
		var re *Error
		if !errors.As(err, &re) || (re.StatusCode != http.StatusMethodNotAllowed && re.StatusCode != http.StatusNotImplemented) {
			return ocispec.Descriptor{}, err
		}
	}
	rq.method = http.MethodGet
	resp, err = c.do(ctx, p, rq)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer resp.Body.Close()
	body, mediaType, err := readManifest(p, ref.Object(), resp)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	dgst := digest.FromBytes(body)
	if ref.Digest != "" {
		if got := ref.Digest.Algorithm().FromBytes(body); got != ref.Digest {
			return ocispec.Descriptor{}, fmt.Errorf("registry %s: manifest %s: content has digest %s: %w", p.Host, ref.Digest, got, errdefs.ErrFailedPrecondition)
		}
		dgst = ref.Digest
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: dgst, Size: int64(len(body))}, nil
}

// descFromHeaders builds a descriptor from a HEAD answer. ok is false when
// the headers are not enough and the manifest must be fetched.
func descFromHeaders(p HostPlan, ref Reference, resp *http.Response) (ocispec.Descriptor, bool, error) {
	mt := contentType(resp)
	if err := checkManifestType(p, ref.Object(), resp, mt); err != nil {
		return ocispec.Descriptor{}, false, err
	}
	if resp.ContentLength > MaxManifestSize {
		return ocispec.Descriptor{}, false, tooLarge(p, ref.Object(), resp.ContentLength)
	}
	if !IsManifest(mt) && !IsIndex(mt) {
		return ocispec.Descriptor{}, false, nil
	}
	dgst, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if err != nil || resp.ContentLength <= 0 || (ref.Digest != "" && dgst != ref.Digest) {
		return ocispec.Descriptor{}, false, nil
	}
	return ocispec.Descriptor{MediaType: mt, Digest: dgst, Size: resp.ContentLength}, true, nil
}

func contentType(resp *http.Response) string {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

// checkManifestType refuses HTML pages and schema 1 manifests by their
// Content-Type.
func checkManifestType(p HostPlan, object string, resp *http.Response, mt string) error {
	switch {
	case mt == "text/html" || mt == "application/xhtml+xml":
		return htmlAnswer(p, resp)
	case isSchema1(mt):
		return fmt.Errorf("registry %s: manifest %s is a Docker schema 1 manifest (%s), which berth does not support: push the image again with a current client: %w", p.Host, object, mt, errdefs.ErrNotImplemented)
	}
	return nil
}

func htmlAnswer(p HostPlan, resp *http.Response) error {
	return fmt.Errorf("registry %s: %s %s answered with an HTML page, not a registry response: check that %s is a registry (hosts.toml server or mirror URL, proxy, captive portal): %w",
		p.Host, resp.Request.Method, resp.Request.URL.Path, p.URL, errdefs.ErrUnavailable)
}

func tooLarge(p HostPlan, object string, size int64) error {
	return fmt.Errorf("registry %s: manifest %s is %d bytes, over the %d MiB manifest size limit: %w", p.Host, object, size, MaxManifestSize>>20, errdefs.ErrInvalidArgument)
}

// readManifest reads a manifest response body under MaxManifestSize and
// works out its media type from Content-Type or, for a generic one, from
// the document itself.
func readManifest(p HostPlan, object string, resp *http.Response) ([]byte, string, error) {
	mt := contentType(resp)
	if err := checkManifestType(p, object, resp, mt); err != nil {
		return nil, "", err
	}
	if resp.ContentLength > MaxManifestSize {
		return nil, "", tooLarge(p, object, resp.ContentLength)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
	if err != nil {
		return nil, "", fmt.Errorf("registry %s: read manifest %s: %w", p.Host, object, err)
	}
	if len(body) > MaxManifestSize {
		return nil, "", tooLarge(p, object, int64(len(body)))
	}
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("<")) {
		return nil, "", htmlAnswer(p, resp)
	}
	generic := mt == "" || mt == "application/json" || mt == "text/plain" || mt == "application/octet-stream"
	if !generic && !IsManifest(mt) && !IsIndex(mt) {
		return nil, "", unsupportedType(p, object, mt)
	}
	var doc struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
		Config        json.RawMessage `json:"config"`
		FSLayers      json.RawMessage `json:"fsLayers"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, "", fmt.Errorf("registry %s: manifest %s (content type %q) is not a JSON manifest: %v: %w", p.Host, object, mt, err, errdefs.ErrUnavailable)
	}
	if generic {
		switch {
		case doc.SchemaVersion == 1 || doc.FSLayers != nil:
			mt = string(types.DockerManifestSchema1)
		case doc.MediaType != "":
			mt = doc.MediaType
		case doc.Manifests != nil:
			mt = ocispec.MediaTypeImageIndex
		case doc.Config != nil:
			mt = ocispec.MediaTypeImageManifest
		}
		if err := checkManifestType(p, object, resp, mt); err != nil {
			return nil, "", err
		}
		if !IsManifest(mt) && !IsIndex(mt) {
			return nil, "", unsupportedType(p, object, mt)
		}
	}
	return body, mt, nil
}

func unsupportedType(p HostPlan, object, mt string) error {
	if mt == "" {
		mt = "none"
	}
	return fmt.Errorf("registry %s: manifest %s has unsupported media type %q (berth takes OCI and Docker schema 2 manifests and indexes): %w", p.Host, object, mt, errdefs.ErrNotImplemented)
}

// FetchManifest fetches the manifest or index desc describes and returns
// its bytes, verified against desc's size and digest.
func (c *Client) FetchManifest(ctx context.Context, ref Reference, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > MaxManifestSize {
		return nil, fmt.Errorf("fetch manifest %s from %q: %d bytes is over the %d MiB manifest size limit: %w", desc.Digest, ref.Name(), desc.Size, MaxManifestSize>>20, errdefs.ErrInvalidArgument)
	}
	rc, err := c.Fetch(ctx, ref, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(VerifyReader(rc, desc))
	if err != nil {
		return nil, fmt.Errorf("fetch manifest %s from %q: %w", desc.Digest, ref.Name(), err)
	}
	return data, nil
}

// Tags lists the tags of ref's repository (its tag and digest are ignored),
// following pagination, from the first host with the resolve capability
// that answers.
func (c *Client) Tags(ctx context.Context, ref Reference) ([]string, error) {
	op := fmt.Sprintf("list tags of %q", ref.Name())
	hosts, err := c.hostsFor(ctx, ref.Registry, CapResolve)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	var tags []string
	err = c.failover(ctx, op, hosts, func(_ int, p HostPlan) error {
		tags = tags[:0]
		rq := request{
			method: http.MethodGet,
			path:   "/" + ref.Repository + "/tags/list",
			query:  url.Values{"n": {"1000"}},
			scopes: []string{repositoryScope(ref.Repository, "pull")},
		}
		for page := 0; ; page++ {
			if page == 10000 {
				return fmt.Errorf("registry %s: more than %d pages of tags", p.Host, page)
			}
			resp, err := c.do(ctx, p, rq)
			if err != nil {
				return err
			}
			var doc struct {
				Tags []string `json:"tags"`
			}
			err = json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&doc)
			resp.Body.Close()
			if err != nil {
				return fmt.Errorf("registry %s: decode tag list: %w: %w", p.Host, err, errdefs.ErrUnavailable)
			}
			tags = append(tags, doc.Tags...)
			next := nextLink(resp)
			if next == nil {
				return nil
			}
			if next.Host != resp.Request.URL.Host {
				return fmt.Errorf("registry %s: tag list continues on another host %q: %w", p.Host, next.Host, errdefs.ErrUnavailable)
			}
			rq.abs, rq.query = next, nil
		}
	})
	if err != nil {
		return nil, err
	}
	return tags, nil
}

// nextLink returns the rel="next" target of a Link header, resolved
// against the request URL.
func nextLink(resp *http.Response) *url.URL {
	for _, v := range resp.Header.Values("Link") {
		for _, link := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(link), ";")
			if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
				continue
			}
			target = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(target), "<"), ">")
			u, err := url.Parse(target)
			if err != nil {
				return nil
			}
			return resp.Request.URL.ResolveReference(u)
		}
	}
	return nil
}

// Platforms lists the manifests ref resolves to, each with its platform:
// the entries of an index, or for a single manifest that manifest with the
// platform read from its image config.
func (c *Client) Platforms(ctx context.Context, ref Reference) ([]ocispec.Descriptor, error) {
	_, desc, err := c.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	data, err := c.FetchManifest(ctx, ref, desc)
	if err != nil {
		return nil, err
	}
	if IsIndex(desc.MediaType) {
		var idx ocispec.Index
		if err := json.Unmarshal(data, &idx); err != nil {
			return nil, fmt.Errorf("platforms of %q: decode index %s: %w: %w", ref.String(), desc.Digest, err, errdefs.ErrInvalidArgument)
		}
		return idx.Manifests, nil
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("platforms of %q: decode manifest %s: %w: %w", ref.String(), desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	if m.Config.Size > MaxManifestSize {
		return nil, fmt.Errorf("platforms of %q: image config %s is %d bytes, over the %d MiB limit: %w", ref.String(), m.Config.Digest, m.Config.Size, MaxManifestSize>>20, errdefs.ErrInvalidArgument)
	}
	rc, err := c.Fetch(ctx, ref, m.Config)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(VerifyReader(rc, m.Config))
	if err != nil {
		return nil, fmt.Errorf("platforms of %q: image config %s: %w", ref.String(), m.Config.Digest, err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("platforms of %q: decode image config %s: %w: %w", ref.String(), m.Config.Digest, err, errdefs.ErrInvalidArgument)
	}
	desc.Platform = &ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant, OSVersion: cfg.OSVersion, OSFeatures: cfg.OSFeatures}
	return []ocispec.Descriptor{desc}, nil
}
