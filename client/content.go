package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	contentapi "github.com/berth-dev/berth/api/content/v1"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// BlobInfo describes a committed blob.
type BlobInfo struct {
	Digest    string            `json:"digest"`
	Size      int64             `json:"size"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// IngestStatus describes an ingest in progress.
type IngestStatus struct {
	Ref       string    `json:"ref"`
	Offset    int64     `json:"offset"`
	Total     int64     `json:"total"`
	Expected  string    `json:"expected,omitempty"`
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func blobInfoFromProto(i *contentapi.Info) BlobInfo {
	return BlobInfo{Digest: i.GetDigest(), Size: i.GetSize(), CreatedAt: timeOf(i.GetCreatedAt()),
		UpdatedAt: timeOf(i.GetUpdatedAt()), Labels: i.GetLabels()}
}

func statusFromProto(s *contentapi.Status) IngestStatus {
	return IngestStatus{Ref: s.GetRef(), Offset: s.GetOffset(), Total: s.GetTotal(), Expected: s.GetExpected(),
		StartedAt: timeOf(s.GetStartedAt()), UpdatedAt: timeOf(s.GetUpdatedAt())}
}

// BlobInfo returns the blob with the given digest.
func (c *Client) BlobInfo(ctx context.Context, digest string) (BlobInfo, error) {
	r, err := c.content.Info(ctx, &contentapi.InfoRequest{Digest: digest})
	if err != nil {
		return BlobInfo{}, err
	}
	return blobInfoFromProto(r.GetInfo()), nil
}

// ListBlobs returns the blobs matching any of filters (fields: digest, size, labels.KEY).
func (c *Client) ListBlobs(ctx context.Context, filters ...string) ([]BlobInfo, error) {
	stream, err := c.content.List(ctx, &contentapi.ListContentRequest{Filters: filters})
	if err != nil {
		return nil, err
	}
	var out []BlobInfo
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		for _, i := range r.GetInfo() {
			out = append(out, blobInfoFromProto(i))
		}
	}
}

// SetBlobLabels sets (or, with an empty value, removes) the given labels.
func (c *Client) SetBlobLabels(ctx context.Context, digest string, labels map[string]string) (BlobInfo, error) {
	r, err := c.content.Update(ctx, &contentapi.UpdateRequest{
		Info:       &contentapi.Info{Digest: digest, Labels: nonEmpty(labels)},
		UpdateMask: labelMask(labels),
	})
	if err != nil {
		return BlobInfo{}, err
	}
	return blobInfoFromProto(r.GetInfo()), nil
}

// ReplaceBlobLabels replaces all labels of a blob.
func (c *Client) ReplaceBlobLabels(ctx context.Context, digest string, labels map[string]string) (BlobInfo, error) {
	r, err := c.content.Update(ctx, &contentapi.UpdateRequest{
		Info:       &contentapi.Info{Digest: digest, Labels: labels},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels"}},
	})
	if err != nil {
		return BlobInfo{}, err
	}
	return blobInfoFromProto(r.GetInfo()), nil
}

// DeleteBlob removes a blob from the namespace; its bytes leave the disk at
// the next garbage collection once no namespace holds them.
func (c *Client) DeleteBlob(ctx context.Context, digest string) error {
	_, err := c.content.Delete(ctx, &contentapi.DeleteContentRequest{Digest: digest})
	return err
}

// ReadBlob copies the blob, or size bytes of it from offset (size 0: to the
// end), to w and returns how many bytes it wrote.
func (c *Client) ReadBlob(ctx context.Context, digest string, offset, size int64, w io.Writer) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.content.Read(ctx, &contentapi.ReadContentRequest{Digest: digest, Offset: offset, Size: size})
	if err != nil {
		return 0, err
	}
	var n int64
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		} else if err != nil {
			return n, err
		}
		m, err := w.Write(r.GetData())
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
}

// IngestStatus returns the status of the ingest named ref.
func (c *Client) IngestStatus(ctx context.Context, ref string) (IngestStatus, error) {
	r, err := c.content.Status(ctx, &contentapi.StatusRequest{Ref: ref})
	if err != nil {
		return IngestStatus{}, err
	}
	return statusFromProto(r.GetStatus()), nil
}

// ListIngests returns the ingests in progress matching any of filters (field: ref).
func (c *Client) ListIngests(ctx context.Context, filters ...string) ([]IngestStatus, error) {
	r, err := c.content.ListStatuses(ctx, &contentapi.ListStatusesRequest{Filters: filters})
	if err != nil {
		return nil, err
	}
	out := make([]IngestStatus, 0, len(r.GetStatuses()))
	for _, s := range r.GetStatuses() {
		out = append(out, statusFromProto(s))
	}
	return out, nil
}

// AbortIngest discards an ingest and its data.
func (c *Client) AbortIngest(ctx context.Context, ref string) error {
	_, err := c.content.Abort(ctx, &contentapi.AbortRequest{Ref: ref})
	return err
}

// IngestOpts describes a blob to ingest.
type IngestOpts struct {
	Ref      string            // required: names the ingest, so it can be resumed
	Size     int64             // expected size, 0 when unknown
	Expected string            // expected digest, "" when unknown
	Labels   map[string]string // set on the blob at commit
	// Progress, when set, is called with the offset reached after each chunk
	// (and once with the resume offset at the start).
	Progress func(offset int64)
}

// ingestChunk is the size of one WRITE message.
const ingestChunk = 1 << 20

// Ingest writes r into the content store and commits it, returning the
// blob's digest. If an ingest of the same ref was interrupted, it resumes at
// the offset the daemon has, seeking r when r is an io.Seeker (otherwise it
// starts over). It is idempotent: a blob the namespace already has is not an
// error (opts.Labels are still set), and with opts.Expected given, a blob
// already present is not sent again.
func (c *Client) Ingest(ctx context.Context, r io.Reader, opts IngestOpts) (string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.content.Write(ctx)
	if err != nil {
		return "", err
	}
	if err := stream.Send(&contentapi.WriteContentRequest{Action: contentapi.WriteAction_STAT, Ref: opts.Ref, Total: opts.Size, Expected: opts.Expected}); err != nil {
		return "", recvErr(stream, err)
	}
	st, err := stream.Recv()
	if errors.Is(err, ErrAlreadyExists) && opts.Expected != "" {
		// The namespace has (or just adopted) the blob: nothing to send.
		if len(opts.Labels) > 0 {
			if _, err := c.SetBlobLabels(ctx, opts.Expected, opts.Labels); err != nil {
				return "", err
			}
		}
		return opts.Expected, nil
	} else if err != nil {
		return "", err
	}
	offset := st.GetOffset()
	if offset > 0 {
		if seeker, ok := r.(io.Seeker); ok {
			if _, err := seeker.Seek(offset, io.SeekStart); err != nil {
				return "", fmt.Errorf("resume ingest %q at %d: %w", opts.Ref, offset, err)
			}
		} else {
			offset = 0
		}
	}
	if opts.Progress != nil {
		opts.Progress(offset)
	}
	buf := make([]byte, ingestChunk)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := stream.Send(&contentapi.WriteContentRequest{Action: contentapi.WriteAction_WRITE, Offset: offset, Data: buf[:n]}); err != nil {
				return "", recvErr(stream, err)
			}
			offset += int64(n)
			if opts.Progress != nil {
				opts.Progress(offset)
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		} else if rerr != nil {
			// Let the daemon store what it was sent, so a retry resumes there.
			if err := stream.CloseSend(); err == nil {
				_, _ = stream.Recv()
			}
			return "", fmt.Errorf("ingest %q: read input at offset %d: %w", opts.Ref, offset, rerr)
		}
	}
	if err := stream.Send(&contentapi.WriteContentRequest{Action: contentapi.WriteAction_COMMIT, Total: opts.Size, Expected: opts.Expected, Labels: opts.Labels}); err != nil {
		return "", recvErr(stream, err)
	}
	resp, err := stream.Recv()
	if err != nil {
		return "", err
	}
	_ = stream.CloseSend()
	return resp.GetDigest(), nil
}

// recvErr returns the daemon's reason when a send fails because the stream
// ended (gRPC reports that as io.EOF on Send).
func recvErr(stream contentapi.Content_WriteClient, sendErr error) error {
	if errors.Is(sendErr, io.EOF) {
		if _, err := stream.Recv(); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
	}
	return sendErr
}
