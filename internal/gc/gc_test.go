package gc

import (
	"errors"
	"fmt"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func content(ns, key string) Node { return Node{Type: ResourceContent, Namespace: ns, Key: key} }
func lease(ns, key string) Node   { return Node{Type: ResourceLease, Namespace: ns, Key: key} }

// graph is an adjacency list; refs follows it.
type graph map[Node][]Node

func (g graph) refs(n Node, fn func(Node)) error {
	for _, c := range g[n] {
		fn(c)
	}
	return nil
}

func keys(m map[Node]struct{}) []string {
	var out []string
	for n := range m {
		out = append(out, n.String())
	}
	sort.Strings(out)
	return out
}

func TestMark(t *testing.T) {
	idx, mfst, cfg, layer, orphan := content("ns1", "index"), content("ns1", "manifest"), content("ns1", "config"), content("ns1", "layer"), content("ns1", "orphan")
	other := content("ns2", "layer") // same digest, other namespace: a different node
	l := lease("ns1", "pull")
	ing := Node{Type: ResourceIngest, Namespace: "ns1", Key: "ref-1"}
	tests := []struct {
		name  string
		roots []Node
		g     graph
		want  []Node
	}{
		{"no roots marks nothing", nil, graph{idx: {mfst}}, nil},
		{"chain through labels", []Node{idx}, graph{idx: {mfst}, mfst: {cfg, layer}}, []Node{idx, mfst, cfg, layer}},
		{"lease holds content and ingest", []Node{l}, graph{l: {layer, ing}}, []Node{l, layer, ing}},
		{"namespaces do not leak", []Node{idx}, graph{idx: {mfst}, other: {orphan}}, []Node{idx, mfst}},
		{"cycles terminate", []Node{idx}, graph{idx: {mfst}, mfst: {idx}}, []Node{idx, mfst}},
		{"shared child marked once", []Node{idx, mfst}, graph{idx: {layer}, mfst: {layer}}, []Node{idx, mfst, layer}},
		{"dangling reference is kept marked", []Node{idx}, graph{idx: {content("ns1", "missing")}}, []Node{idx, content("ns1", "missing")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Mark(tt.roots, tt.g.refs)
			if err != nil {
				t.Fatal(err)
			}
			want := map[Node]struct{}{}
			for _, n := range tt.want {
				want[n] = struct{}{}
			}
			if diff := cmp.Diff(keys(want), keys(got)); diff != "" {
				t.Errorf("marked (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMarkDeepChain(t *testing.T) {
	g := graph{}
	const depth = 200000
	for i := 0; i < depth; i++ {
		g[content("ns", fmt.Sprint(i))] = []Node{content("ns", fmt.Sprint(i+1))}
	}
	got, err := Mark([]Node{content("ns", "0")}, g.refs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != depth+1 {
		t.Fatalf("marked %d nodes, want %d", len(got), depth+1)
	}
}

func TestMarkReturnsRefsError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Mark([]Node{content("ns", "a")}, func(Node, func(Node)) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
}
