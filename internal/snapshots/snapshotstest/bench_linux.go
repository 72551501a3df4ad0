package snapshotstest

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// BenchPrepareCommit measures a Prepare followed by a Commit of the
// unchanged snapshot, without a parent and on a parent of 256 files of
// 4 KiB (which a copying snapshotter copies). Nothing is mounted in the
// timed loop.
func BenchPrepareCommit(b *testing.B, factory Factory) {
	testutil.RequirePrivileged(b)
	for _, bc := range []struct {
		name  string
		files int
	}{{"parent=none", 0}, {"parent=256x4KiB", 256}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := testContext(b)
			sn := newSnapshotter(b, factory)
			parent := ""
			if bc.files > 0 {
				parent = "base"
				data := string(randomBytes(4096))
				layer(b, sn, parent, "", func(root string) {
					for i := range bc.files {
						writeFile(b, filepath.Join(root, fmt.Sprint(i)), data)
					}
				})
			}
			for i := 0; b.Loop(); i++ {
				key := fmt.Sprint("key-", i)
				if _, err := sn.Prepare(ctx, key, parent); err != nil {
					b.Fatal(err)
				}
				if err := sn.Commit(ctx, fmt.Sprint("name-", i), key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
