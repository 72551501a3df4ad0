package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	contentapi "github.com/berth-dev/berth/api/content/v1"
	eventsapi "github.com/berth-dev/berth/api/events/v1"
	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
)

// Write runs one ingest over a stream. The first request opens the ingest
// (resuming it if it exists). STAT and COMMIT requests are answered; WRITE
// requests are not, so clients can stream data without waiting. A stream
// that ends before COMMIT closes the writer and keeps the data.
func (c *contentService) Write(stream contentapi.Content_WriteServer) error {
	ctx := stream.Context()
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	if req.GetRef() == "" {
		return fmt.Errorf("write: the first request must name a ref: %w", errdefs.ErrInvalidArgument)
	}
	w, err := c.s.content.Writer(ctx, content.WriterOpts{Ref: req.GetRef(), Total: req.GetTotal(), Expected: digest.Digest(req.GetExpected())})
	if err != nil {
		return err
	}
	defer w.Close()
	ref := req.GetRef()
	st, err := w.Status()
	if err != nil {
		return err
	}
	for {
		if req.GetAction() != contentapi.WriteAction_STAT && len(req.GetData()) > 0 {
			if req.GetOffset() == 0 && st.Offset > 0 {
				// The client restarts from the beginning (it cannot seek).
				if err := w.Truncate(0); err != nil {
					return fmt.Errorf("ingest %q: restart: %w", ref, err)
				}
				st.Offset = 0
			}
			if req.GetOffset() != st.Offset {
				return fmt.Errorf("ingest %q: write at offset %d but the ingest is at %d: %w", ref, req.GetOffset(), st.Offset, errdefs.ErrFailedPrecondition)
			}
			if _, err := w.Write(req.GetData()); err != nil {
				return fmt.Errorf("ingest %q: %w", ref, err)
			}
			st.Offset += int64(len(req.GetData()))
		}
		switch req.GetAction() {
		case contentapi.WriteAction_STAT:
			if err := stream.Send(&contentapi.WriteContentResponse{Action: req.GetAction(), StartedAt: timestamp(st.StartedAt),
				UpdatedAt: timestamp(st.UpdatedAt), Offset: st.Offset, Total: st.Total, Digest: w.Digest().String()}); err != nil {
				return err
			}
		case contentapi.WriteAction_COMMIT:
			dgst := digest.Digest(req.GetExpected())
			if dgst == "" {
				dgst = w.Digest()
			}
			err := w.Commit(ctx, req.GetTotal(), digest.Digest(req.GetExpected()), req.GetLabels())
			switch {
			case err == nil:
				c.s.events.Publish(ctx, "/content/create", &eventsapi.ContentCreate{Digest: dgst.String(), Size: st.Offset})
			case errdefs.IsAlreadyExists(err):
				// Committing what the namespace has is not an error: the
				// write is idempotent, and the labels asked for are set.
				if err := c.setLabels(ctx, dgst, req.GetLabels()); err != nil {
					return err
				}
			default:
				return err
			}
			return stream.Send(&contentapi.WriteContentResponse{Action: req.GetAction(), Offset: st.Offset, Total: st.Offset, Digest: dgst.String()})
		}
		req, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// setLabels sets the given labels on a blob, leaving its others alone.
func (c *contentService) setLabels(ctx context.Context, dgst digest.Digest, lbls map[string]string) error {
	if len(lbls) == 0 {
		return nil
	}
	var paths []string
	for k := range lbls {
		paths = append(paths, "labels."+k)
	}
	info, err := c.s.content.Update(ctx, content.Info{Digest: dgst, Labels: lbls}, paths...)
	if err != nil {
		return err
	}
	c.s.events.Publish(ctx, "/content/update", &eventsapi.ContentUpdate{Digest: dgst.String(), Labels: info.Labels})
	return nil
}
