package images

import (
	"sync"

	"github.com/opencontainers/go-digest"
)

// Phase is where one item of a pull stands.
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

// Progress reports one item of a pull: the manifest, the config or a layer.
type Progress struct {
	Kind   string // "index", "manifest", "config" or "layer"
	Digest digest.Digest
	Phase  Phase
	Offset int64 // bytes fetched so far
	Total  int64
}

// reporter serialises progress callbacks from the pull's goroutines.
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
