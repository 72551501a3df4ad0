package server

import (
	contentapi "github.com/berth-dev/berth/api/content/v1"
	"github.com/berth-dev/berth/internal/content"
)

type contentService struct {
	contentapi.UnimplementedContentServer
	s *Server
}

// readChunk is the largest data message Read sends; clients' Write should
// use the same size (it stays under gRPC's 4 MiB message limit).
const readChunk = 1 << 20

func infoToProto(info content.Info) *contentapi.Info {
	return &contentapi.Info{
		Digest:    info.Digest.String(),
		Size:      info.Size,
		CreatedAt: timestamp(info.CreatedAt),
		UpdatedAt: timestamp(info.UpdatedAt),
		Labels:    info.Labels,
	}
}

func statusToProto(st content.Status) *contentapi.Status {
	return &contentapi.Status{
		Ref:       st.Ref,
		Offset:    st.Offset,
		Total:     st.Total,
		Expected:  st.Expected.String(),
		StartedAt: timestamp(st.StartedAt),
		UpdatedAt: timestamp(st.UpdatedAt),
	}
}
