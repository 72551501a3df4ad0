package network

import (
	"context"
	"testing"
)

// lifecycle is one container's network lifetime: NewNetNS, Setup, Teardown.
func (tn *testNet) lifecycle(mode Mode) error {
	ctx := context.Background()
	id := newID()
	path, err := tn.m.NewNetNS(id)
	if err != nil {
		return err
	}
	if _, err := tn.m.Setup(ctx, id, path, mode, nil); err != nil {
		return err
	}
	return tn.m.Teardown(ctx, id, path)
}

// BenchmarkLifecycle measures NewNetNS, Setup and Teardown of one
// container at a time.
func BenchmarkLifecycle(b *testing.B) {
	for i, mode := range []Mode{ModeNone, ModeBridge} {
		b.Run(string(mode), func(b *testing.B) {
			tn := newTestNet(b, 30+i, 24)
			for b.Loop() {
				if err := tn.lifecycle(mode); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLifecycleParallel is BenchmarkLifecycle with 10 containers per
// CPU at a time, as when many containers start at once.
func BenchmarkLifecycleParallel(b *testing.B) {
	for i, mode := range []Mode{ModeNone, ModeBridge} {
		b.Run(string(mode), func(b *testing.B) {
			tn := newTestNet(b, 32+i, 24)
			b.SetParallelism(10)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := tn.lifecycle(mode); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
