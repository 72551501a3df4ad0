// Package gc is the pure mark phase of berth's garbage collector: given root
// nodes and a function listing each node's references, it computes the set of
// reachable nodes. It does no I/O and knows nothing of bbolt or the disk;
// package metadata builds the graph and sweeps what is not marked.
package gc

import "fmt"

// Labels that shape the reference graph (docs/gc-and-leases.md).
const (
	// LabelRoot on a blob makes it a root: it is kept while the label is set.
	LabelRoot = "berth.io/gc.root"
	// LabelRefContentPrefix prefixes labels whose value is the digest of a
	// blob the labelled object references, e.g. berth.io/gc.ref.content.l.0.
	LabelRefContentPrefix = "berth.io/gc.ref.content"
	// LabelRefSnapshotPrefix, followed by a snapshotter name (and optionally
	// ".anything"), labels an object that references the committed snapshot
	// named by the value, e.g. berth.io/gc.ref.snapshot.overlayfs=sha256:….
	LabelRefSnapshotPrefix = "berth.io/gc.ref.snapshot."
)

// ResourceType is the kind of a node.
type ResourceType uint8

// The resource types berth collects. Values are stable: they order sweeps.
const (
	ResourceUnknown ResourceType = iota
	ResourceContent
	ResourceIngest
	ResourceLease
	ResourceImage
	ResourceContainer
	ResourceSnapshot
)

func (r ResourceType) String() string {
	switch r {
	case ResourceContent:
		return "content"
	case ResourceIngest:
		return "ingest"
	case ResourceLease:
		return "lease"
	case ResourceImage:
		return "image"
	case ResourceContainer:
		return "container"
	case ResourceSnapshot:
		return "snapshot"
	default:
		return fmt.Sprintf("resource(%d)", uint8(r))
	}
}

// Node is one object in the reference graph.
type Node struct {
	Type      ResourceType
	Namespace string
	Key       string // digest, ingest ref, lease ID, image name, ...
}

func (n Node) String() string { return fmt.Sprintf("%s/%s/%s", n.Namespace, n.Type, n.Key) }

// RefsFunc calls fn for every node that n references.
type RefsFunc func(n Node, fn func(Node)) error

// Mark returns every node reachable from roots (roots included), following
// refs. It visits each node once, so cycles are harmless, and it uses an
// explicit stack, so deep chains cannot overflow the goroutine stack.
func Mark(roots []Node, refs RefsFunc) (map[Node]struct{}, error) {
	marked := make(map[Node]struct{}, len(roots))
	stack := make([]Node, 0, len(roots))
	push := func(n Node) {
		if _, seen := marked[n]; !seen {
			marked[n] = struct{}{}
			stack = append(stack, n)
		}
	}
	for _, r := range roots {
		push(r)
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if err := refs(n, push); err != nil {
			return nil, fmt.Errorf("references of %s: %w", n, err)
		}
	}
	return marked, nil
}
