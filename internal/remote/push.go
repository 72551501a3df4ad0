package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
)

// PushOptions tunes one Push.
type PushOptions struct {
	// From is a repository on the same registry known to hold the blob.
	// Push then asks the registry to mount it into ref's repository
	// (a cross-repository mount) and uploads only if the registry declines.
	From string
}

// Push stores the object desc describes in ref's repository, using the
// first host with the push capability that works (a mirror without it is
// never written to). content opens the bytes; it is called again for each
// upload retry and may be called zero times.
//
// A blob is first checked with HEAD and skipped if the repository has it;
// then mounted from opts.From if given; otherwise uploaded in one PUT, or
// in Config.ChunkSize chunks. A manifest or index is stored under ref.Tag
// when ref has a tag and no digest, and under desc.Digest otherwise (then
// skipped if present): push an image's blobs and child manifests first, by
// digest, and the tagged root last, so the tag never names an incomplete
// image. Copy does this.
//
// Push is safe to call concurrently for different objects.
func (c *Client) Push(ctx context.Context, ref Reference, desc ocispec.Descriptor, content func() (io.ReadCloser, error), opts PushOptions) error {
	op := fmt.Sprintf("push %s to %q", desc.Digest, ref.Name())
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("%s: %w: %w", op, err, errdefs.ErrInvalidArgument)
	}
	hosts, err := c.hostsFor(ctx, ref.Registry, CapPush)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return c.failover(ctx, op, hosts, func(_ int, p HostPlan) error {
		if isManifestObject(desc.MediaType) {
			return c.pushManifest(ctx, p, ref, desc, content)
		}
		return c.pushBlob(ctx, p, ref, desc, content, opts.From)
	})
}

func (c *Client) pushBlob(ctx context.Context, p HostPlan, ref Reference, desc ocispec.Descriptor, content func() (io.ReadCloser, error), from string) error {
	repo := "/" + ref.Repository
	scopes := []string{repositoryScope(ref.Repository, "pull,push")}
	if from == ref.Repository {
		from = ""
	}
	if from != "" {
		scopes = append(scopes, repositoryScope(from, "pull"))
	}
	resp, err := c.do(ctx, p, request{method: http.MethodHead, path: repo + "/blobs/" + desc.Digest.String(), scopes: scopes})
	if err == nil {
		resp.Body.Close()
		log.G(ctx).Debug("blob already in repository", "host", p.Host, "digest", desc.Digest)
		return nil
	}
	if !errdefs.IsNotFound(err) {
		return err
	}

	start := request{method: http.MethodPost, path: repo + "/blobs/uploads/", scopes: scopes}
	if from != "" {
		start.query = url.Values{"mount": {desc.Digest.String()}, "from": {from}}
	}
	resp, err = c.do(ctx, p, start)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusCreated && from != "" {
		log.G(ctx).Debug("blob mounted", "host", p.Host, "digest", desc.Digest, "from", from)
		return nil
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("registry %s: start upload: unexpected status %d: %w", p.Host, resp.StatusCode, errdefs.ErrUnavailable)
	}
	loc, err := location(p, resp)
	if err != nil {
		return err
	}

	if c.chunkSize > 0 && desc.Size > c.chunkSize {
		if loc, err = c.uploadChunks(ctx, p, loc, desc, content, scopes); err != nil {
			return err
		}
		content, desc.Size = nil, 0
	}
	put := request{
		method: http.MethodPut,
		abs:    withQuery(loc, "digest", desc.Digest.String()),
		header: http.Header{"Content-Type": {"application/octet-stream"}},
		body:   content,
		size:   desc.Size,
		scopes: scopes,
	}
	resp, err = c.do(ctx, p, put)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return checkDigestHeader(p, resp, desc.Digest)
}

// uploadChunks PATCHes content in chunks and returns the location to
// finish the upload at.
func (c *Client) uploadChunks(ctx context.Context, p HostPlan, loc *url.URL, desc ocispec.Descriptor, content func() (io.ReadCloser, error), scopes []string) (*url.URL, error) {
	rc, err := content()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, c.chunkSize)
	for off := int64(0); off < desc.Size; {
		n, err := io.ReadFull(rc, buf[:min(c.chunkSize, desc.Size-off)])
		if err != nil {
			return nil, fmt.Errorf("read blob %s at %d: %w", desc.Digest, off, err)
		}
		chunk := buf[:n]
		resp, err := c.do(ctx, p, request{
			method: http.MethodPatch,
			abs:    loc,
			header: http.Header{
				"Content-Type":  {"application/octet-stream"},
				"Content-Range": {fmt.Sprintf("%d-%d", off, off+int64(n)-1)},
			},
			body:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(chunk)), nil },
			size:   int64(n),
			scopes: scopes,
		})
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if loc, err = location(p, resp); err != nil {
			return nil, err
		}
		off += int64(n)
	}
	return loc, nil
}

func (c *Client) pushManifest(ctx context.Context, p HostPlan, ref Reference, desc ocispec.Descriptor, content func() (io.ReadCloser, error)) error {
	if desc.Size > MaxManifestSize {
		return tooLarge(p, desc.Digest.String(), desc.Size)
	}
	scopes := []string{repositoryScope(ref.Repository, "pull,push")}
	target := desc.Digest.String()
	if ref.Tag != "" && ref.Digest == "" {
		target = ref.Tag
	}
	path := "/" + ref.Repository + "/manifests/" + target
	if target == desc.Digest.String() {
		resp, err := c.do(ctx, p, request{method: http.MethodHead, path: path, header: http.Header{"Accept": {manifestAccept}}, scopes: scopes})
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if !errdefs.IsNotFound(err) {
			return err
		}
	}
	rc, err := content()
	if err != nil {
		return err
	}
	data, err := io.ReadAll(VerifyReader(rc, desc))
	rc.Close()
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	resp, err := c.do(ctx, p, request{
		method: http.MethodPut,
		path:   path,
		header: http.Header{"Content-Type": {desc.MediaType}},
		body:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		size:   int64(len(data)),
		scopes: scopes,
	})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return checkDigestHeader(p, resp, desc.Digest)
}

func checkDigestHeader(p HostPlan, resp *http.Response, want digest.Digest) error {
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != want.String() {
		return fmt.Errorf("registry %s: stored %s as %s: %w", p.Host, want, got, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// location is an upload response's Location, resolved against the
// request URL.
func location(p HostPlan, resp *http.Response) (*url.URL, error) {
	l := resp.Header.Get("Location")
	if l == "" {
		return nil, fmt.Errorf("registry %s: upload answer without a Location: %w", p.Host, errdefs.ErrUnavailable)
	}
	u, err := url.Parse(l)
	if err != nil {
		return nil, fmt.Errorf("registry %s: upload Location %q: %w: %w", p.Host, l, err, errdefs.ErrUnavailable)
	}
	return resp.Request.URL.ResolveReference(u), nil
}

func withQuery(u *url.URL, key, value string) *url.URL {
	v := *u
	q := v.Query()
	q.Set(key, value)
	v.RawQuery = q.Encode()
	return &v
}

// Copy copies the image src names to dst, with every platform of an
// index: blobs first (skipping those dst has, mounting from src's
// repository when both are on one registry), then child manifests by
// digest, then the root under dst's tag. It streams blobs from src to dst
// through VerifyReader without storing them. It returns the root
// descriptor. Copy works one object at a time.
func (c *Client) Copy(ctx context.Context, src, dst Reference) (ocispec.Descriptor, error) {
	_, root, err := c.Resolve(ctx, src)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if dst.Digest != "" && dst.Digest != root.Digest {
		return ocispec.Descriptor{}, fmt.Errorf("copy %q to %q: source resolves to %s: %w", src.String(), dst.String(), root.Digest, errdefs.ErrInvalidArgument)
	}
	from := ""
	if src.Registry == dst.Registry {
		from = src.Repository
	}
	if err := c.copyObject(ctx, src, dst, root, from, true); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("copy %q to %q: %w", src.String(), dst.String(), err)
	}
	return root, nil
}

func (c *Client) copyObject(ctx context.Context, src, dst Reference, desc ocispec.Descriptor, from string, root bool) error {
	if !isManifestObject(desc.MediaType) {
		if !distributable(desc.MediaType) {
			return nil
		}
		return c.Push(ctx, dst, desc, func() (io.ReadCloser, error) {
			rc, err := c.Fetch(ctx, src, desc)
			if err != nil {
				return nil, err
			}
			return verifyingCloser{Reader: VerifyReader(rc, desc), Closer: rc}, nil
		}, PushOptions{From: from})
	}
	data, err := c.FetchManifest(ctx, src, desc)
	if err != nil {
		return err
	}
	var doc struct {
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("decode manifest %s: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	children := append(doc.Manifests, doc.Layers...)
	if doc.Config != nil {
		children = append(children, *doc.Config)
	}
	for _, child := range children {
		if err := c.copyObject(ctx, src, dst, child, from, false); err != nil {
			return err
		}
	}
	target := dst
	if !root {
		target = dst.WithDigest(desc.Digest)
	}
	return c.Push(ctx, target, desc, func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, PushOptions{})
}

// distributable reports whether a layer may be copied between registries
// (foreign and non-distributable layers may not).
func distributable(mediaType string) bool {
	return !strings.Contains(mediaType, "foreign") && !strings.Contains(mediaType, "nondistributable")
}

type verifyingCloser struct {
	io.Reader
	io.Closer
}
