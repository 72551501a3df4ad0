package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
)

// Fetch streams the blob or manifest desc describes from the hosts with
// the pull capability, in order. The bytes are not verified: use
// VerifyReader, or let the content store check size and digest on commit.
//
// The returned reader fails over by itself: when a transfer breaks (a
// reset, a truncated body) it resumes with a Range request at the same
// host, up to the retry policy's attempts, and when a host stalls (see
// StallPolicy) or keeps failing it resumes at the next host. A host that
// ignores Range while resuming is read from the start and the bytes already
// delivered are skipped, so the stream stays continuous. When no host is
// left, Read returns the last error. When desc.Size is set the reader never
// returns more than desc.Size bytes. It is not safe for concurrent use.
func (c *Client) Fetch(ctx context.Context, ref Reference, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return c.fetch(ctx, ref, desc, 0)
}

// FetchRange is Fetch starting at offset, for resuming a download the
// caller has partly stored. If no host honours the Range request the error
// wraps ErrRangeUnsupported and the caller must restart from 0. offset
// equal to desc.Size gives an empty reader without contacting a registry.
func (c *Client) FetchRange(ctx context.Context, ref Reference, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	if offset < 0 || (desc.Size > 0 && offset > desc.Size) {
		return nil, fmt.Errorf("fetch %s from %q: offset %d outside 0..%d: %w", desc.Digest, ref.Name(), offset, desc.Size, errdefs.ErrInvalidArgument)
	}
	if offset > 0 && offset == desc.Size {
		return io.NopCloser(strings.NewReader("")), nil
	}
	return c.fetch(ctx, ref, desc, offset)
}

func (c *Client) fetch(ctx context.Context, ref Reference, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("fetch %q from %q: %w: %w", desc.Digest, ref.Name(), err, errdefs.ErrInvalidArgument)
	}
	if isManifestObject(desc.MediaType) && desc.Size > MaxManifestSize {
		return nil, fmt.Errorf("fetch %s from %q: manifest of %d bytes is over the %d MiB manifest size limit: %w", desc.Digest, ref.Name(), desc.Size, MaxManifestSize>>20, errdefs.ErrInvalidArgument)
	}
	hosts, err := c.hostsFor(ctx, ref.Registry, CapPull)
	if err != nil {
		return nil, fmt.Errorf("fetch %s from %q: %w", desc.Digest, ref.Name(), err)
	}
	r := &fetchReader{c: c, ctx: ctx, ref: ref, desc: desc, hosts: hosts, pos: offset}
	if err := r.open(offset > 0); err != nil {
		return nil, err
	}
	return r, nil
}

// fetchReader streams one object, reopening at the current position on
// failure: at the same host for transient errors, at the next for stalls.
type fetchReader struct {
	c     *Client
	ctx   context.Context
	ref   Reference
	desc  ocispec.Descriptor
	hosts []HostPlan

	idx     int           // current host
	pos     int64         // absolute offset of the next byte
	body    io.ReadCloser // nil between hosts
	host    string
	retries int // resumptions at the current host
	err     error
}

func (r *fetchReader) op() string {
	return fmt.Sprintf("fetch %s from %q", r.desc.Digest, r.ref.Name())
}

func (r *fetchReader) request() request {
	rq := request{
		method: http.MethodGet,
		path:   "/" + r.ref.Repository + "/blobs/" + r.desc.Digest.String(),
		header: http.Header{},
		scopes: []string{repositoryScope(r.ref.Repository, "pull")},
	}
	if isManifestObject(r.desc.MediaType) {
		rq.path = "/" + r.ref.Repository + "/manifests/" + r.desc.Digest.String()
		rq.header.Set("Accept", r.desc.MediaType+", "+manifestAccept)
	}
	if r.pos > 0 {
		end := ""
		if r.desc.Size > 0 {
			end = strconv.FormatInt(r.desc.Size-1, 10)
		}
		rq.header.Set("Range", fmt.Sprintf("bytes=%d-%s", r.pos, end))
	}
	return rq
}

// open connects to the first host from idx on that serves the object at
// pos. strict (FetchRange's first open) refuses hosts that ignore Range;
// otherwise their leading bytes are skipped.
func (r *fetchReader) open(strict bool) error {
	base := r.idx
	return r.c.failover(r.ctx, r.op(), r.hosts[base:], func(i int, p HostPlan) error {
		resp, err := r.c.do(r.ctx, p, r.request())
		if err != nil {
			return err
		}
		if r.pos > 0 {
			switch resp.StatusCode {
			case http.StatusPartialContent:
				if start, ok := contentRangeStart(resp.Header.Get("Content-Range")); !ok || start != r.pos {
					resp.Body.Close()
					return fmt.Errorf("registry %s: asked for bytes from %d, got Content-Range %q: %w", p.Host, r.pos, resp.Header.Get("Content-Range"), errdefs.ErrUnavailable)
				}
			default:
				if strict {
					resp.Body.Close()
					return fmt.Errorf("registry %s: %w", p.Host, ErrRangeUnsupported)
				}
				log.G(r.ctx).Debug("registry ignored the range request; skipping bytes already read", "host", p.Host, "digest", r.desc.Digest, "offset", r.pos)
				if _, err := io.CopyN(io.Discard, resp.Body, r.pos); err != nil {
					resp.Body.Close()
					return fmt.Errorf("registry %s: skip to offset %d: %w", p.Host, r.pos, err)
				}
			}
		}
		r.idx, r.body, r.host = base+i, resp.Body, p.Host
		return nil
	})
}

func contentRangeStart(v string) (int64, bool) {
	v, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil
}

func (r *fetchReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for {
		if r.desc.Size > 0 && r.pos >= r.desc.Size {
			return 0, io.EOF
		}
		if r.body == nil {
			if err := r.open(false); err != nil {
				r.err = err
				return 0, err
			}
		}
		buf := p
		if left := r.desc.Size - r.pos; r.desc.Size > 0 && int64(len(buf)) > left {
			buf = buf[:left]
		}
		n, err := r.body.Read(buf)
		r.pos += int64(n)
		if err == nil {
			return n, nil
		}
		if err == io.EOF {
			if r.desc.Size <= 0 || r.pos == r.desc.Size {
				return n, io.EOF
			}
			err = fmt.Errorf("registry %s: body ended at byte %d of %d: %w", r.host, r.pos, r.desc.Size, io.ErrUnexpectedEOF)
		}
		r.body.Close()
		r.body = nil
		if r.ctx.Err() != nil {
			r.err = fmt.Errorf("%s: %w", r.op(), r.ctx.Err())
			return n, r.err
		}
		if errors.Is(err, ErrStalled) || !isTransient(err) || r.retries >= r.c.retry.Attempts {
			r.idx++
			r.retries = 0
			if r.idx >= len(r.hosts) {
				r.err = fmt.Errorf("%s: %w", r.op(), err)
				return n, r.err
			}
			log.G(r.ctx).Warn("registry transfer failed, resuming at the next host", "host", r.host, "next_host", r.hosts[r.idx].Host, "digest", r.desc.Digest, "offset", r.pos, "error", err)
		} else {
			log.G(r.ctx).Debug("registry transfer broke, resuming", "host", r.host, "digest", r.desc.Digest, "offset", r.pos, "error", err)
			if err := r.c.sleep(r.ctx, r.c.backoff(r.retries)); err != nil {
				r.err = fmt.Errorf("%s: %w", r.op(), err)
				return n, r.err
			}
			r.retries++
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (r *fetchReader) Close() error {
	if r.err == nil {
		r.err = fmt.Errorf("%s: reader closed: %w", r.op(), errdefs.ErrFailedPrecondition)
	}
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}

// VerifyReader returns a reader of r that checks desc's size and digest:
// at the end of the data it returns io.EOF only if both match, otherwise an
// error of kind ErrFailedPrecondition (truncated, too long, or digest
// mismatch). It never returns more than desc.Size bytes. It does not close
// r.
func VerifyReader(r io.Reader, desc ocispec.Descriptor) io.Reader {
	if err := desc.Digest.Validate(); err != nil {
		return &verifyReader{err: fmt.Errorf("verify %q: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)}
	}
	if desc.Size < 0 {
		return &verifyReader{err: fmt.Errorf("verify %s: negative size %d: %w", desc.Digest, desc.Size, errdefs.ErrInvalidArgument)}
	}
	return &verifyReader{r: r, desc: desc, d: desc.Digest.Algorithm().Digester()}
}

type verifyReader struct {
	r    io.Reader
	desc ocispec.Descriptor
	d    digest.Digester
	n    int64
	err  error
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	left := v.desc.Size - v.n
	if left == 0 {
		v.err = v.finish()
		return 0, v.err
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := v.r.Read(p)
	v.d.Hash().Write(p[:n])
	v.n += int64(n)
	switch {
	case err == io.EOF && v.n < v.desc.Size:
		v.err = fmt.Errorf("verify %s: truncated: got %d of %d bytes: %w", v.desc.Digest, v.n, v.desc.Size, errdefs.ErrFailedPrecondition)
		return n, v.err
	case err == io.EOF:
		v.err = v.finish()
		return n, v.err
	}
	return n, err
}

// finish runs once desc.Size bytes were read: it checks that r has no more
// and that the digest matches.
func (v *verifyReader) finish() error {
	var b [1]byte
	for i := 0; ; i++ {
		n, err := v.r.Read(b[:])
		if n > 0 {
			return fmt.Errorf("verify %s: more than the expected %d bytes: %w", v.desc.Digest, v.desc.Size, errdefs.ErrFailedPrecondition)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if i == 100 {
			return io.ErrNoProgress
		}
	}
	if got := v.d.Digest(); got != v.desc.Digest {
		return fmt.Errorf("verify %s: digest mismatch: content has %s: %w", v.desc.Digest, got, errdefs.ErrFailedPrecondition)
	}
	return io.EOF
}
