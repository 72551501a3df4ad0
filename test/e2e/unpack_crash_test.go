package e2e

import (
	"bufio"
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// countDirs counts the snapshot directories on disk (committed and active).
func countDirs(t *testing.T, root string) int {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(root, "snapshots", "*", "snapshots", "*", "fs"))
	if err != nil {
		t.Fatal(err)
	}
	return len(dirs)
}

func TestDaemonKilledDuringUnpackThenPullCompletes(t *testing.T) {
	d := newDaemon(t)
	d.start()
	host := testutil.StartRegistry(t, "")
	img, err := random.Image(8<<20, 8)
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/crash/unpack:v1"
	testutil.PushImage(t, img, ref)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pull := osexec.CommandContext(ctx, filepath.Join(binDir, "berth"), "--address", d.sock, "pull", ref)
	stderr, err := pull.StderrPipe()
	must(t, err)
	must(t, pull.Start())
	sc := bufio.NewScanner(stderr)
	killed := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), ": unpacking") {
			d.kill()
			killed = true
			break
		}
	}
	pull.Wait()
	if !killed {
		t.Fatal("the pull never reported an unpacking layer")
	}

	d.start()
	if out := strings.TrimSpace(d.berth(nil, "images", "-q").ok(t)); out != "" {
		t.Fatalf("an image was recorded by the interrupted pull: %q", out)
	}
	d.berth(nil, "pull", ref).ok(t)
	layers, err := img.Layers()
	must(t, err)
	// Every layer is a committed snapshot; leftovers of the killed unpack
	// are at most the one active snapshot it was writing.
	if n := countDirs(t, d.root); n < len(layers) || n > len(layers)+1 {
		t.Errorf("%d snapshot directories after the pull, want %d (+1 leftover at most)", n, len(layers))
	}
	// Removing the image and the pull's leases frees everything: nothing
	// half-made is left behind.
	d.berth(nil, "rmi", ref).ok(t)
	for _, id := range strings.Fields(d.berth(nil, "lease", "ls", "-q").ok(t)) {
		d.berth(nil, "lease", "rm", id).ok(t)
	}
	d.berth(nil, "system", "prune").ok(t)
	if n := countDirs(t, d.root); n != 0 {
		t.Errorf("%d snapshot directories left after rmi and prune", n)
	}
	if blobs, _ := filepath.Glob(filepath.Join(d.root, "content", "blobs", "sha256", "*")); len(blobs) != 0 {
		t.Errorf("%d blobs left after rmi and prune", len(blobs))
	}
	if _, err := os.Stat(d.root); err != nil {
		t.Fatal(err)
	}
}
