package server

import (
	"errors"
	"fmt"
	"io"

	contentapi "github.com/berth-dev/berth/api/content/v1"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
)

func (c *contentService) Read(req *contentapi.ReadContentRequest, stream contentapi.Content_ReadServer) error {
	dgst := digest.Digest(req.GetDigest())
	ra, err := c.s.content.ReaderAt(stream.Context(), dgst)
	if err != nil {
		return err
	}
	defer ra.Close()
	offset, end := req.GetOffset(), ra.Size()
	if offset < 0 || offset > end || req.GetSize() < 0 {
		return fmt.Errorf("read blob %s: range offset %d size %d outside its %d bytes: %w", dgst, offset, req.GetSize(), end, errdefs.ErrInvalidArgument)
	}
	if req.GetSize() > 0 && offset+req.GetSize() < end {
		end = offset + req.GetSize()
	}
	buf := make([]byte, min(readChunk, end-offset))
	for offset < end {
		n, err := ra.ReadAt(buf[:min(int64(len(buf)), end-offset)], offset)
		if n > 0 {
			if serr := stream.Send(&contentapi.ReadContentResponse{Offset: offset, Data: buf[:n]}); serr != nil {
				return serr
			}
			offset += int64(n)
		}
		if err != nil && !(errors.Is(err, io.EOF) && offset == end) {
			return fmt.Errorf("read blob %s at %d: %w", dgst, offset, err)
		}
	}
	return nil
}
