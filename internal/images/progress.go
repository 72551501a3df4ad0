package images

import (
	"sync"

	"github.com/opencontainers/go-digest"
)

// Phase is where one item of a pull or push stands.
type Phase string

// The phases of a pull item, in order. Exists means nothing had to be done.
const (
	PhaseResolving   Phase = "resolving"
	PhaseWaiting     Phase = "waiting"
	PhaseDownloading Phase = "downloading"
	PhaseVerifying   Phase = "verifying"
	PhaseUnpacking   Phase = "unpacking"
	PhaseDone        Phase = "done"
	PhaseExists      Phase = "exists"
)

// The phases of a push item besides waiting, done and exists (the registry
// had it): uploading, or mounted from another repository of the registry.
const (
	PhaseUploading Phase = "uploading"
	PhaseMounted   Phase = "mounted"
)

// Progress reports one item of a pull or push: the index, a manifest, a
// config or a layer.
type Progress struct {
	Kind   string // "index", "manifest", "config" or "layer"
	Digest digest.Digest
	Phase  Phase
	Offset int64 // bytes fetched or uploaded so far
	Total  int64
}

// reporter serialises progress callbacks from a transfer's goroutines.
type reporter struct {
	mu sync.Mutex
	fn func(Progress)
}

func (r *reporter) report(p Progress) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fn(p)
}
