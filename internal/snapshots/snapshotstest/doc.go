// Package snapshotstest is the conformance suite for snapshots.Snapshotter
// implementations, in the manner of testing/fstest: an implementation's
// privileged test calls Run with a Factory.
//
//	func TestSnapshotter(t *testing.T) {
//		testutil.RequirePrivileged(t)
//		snapshotstest.Run(t, func(ctx context.Context, root string) (snapshots.Snapshotter, error) {
//			return native.New(root)
//		})
//	}
//
// The suite really mounts what the snapshotter returns (mount.All), so it
// needs root; every mount is undone with t.Cleanup. BenchPrepareCommit is
// the shared benchmark. The package is imported only by tests.
package snapshotstest
