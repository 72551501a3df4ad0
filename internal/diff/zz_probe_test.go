package diff

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func ru(who int) (time.Duration, time.Duration) {
	var r syscall.Rusage
	syscall.Getrusage(who, &r)
	return time.Duration(r.Utime.Nano()), time.Duration(r.Stime.Nano())
}

func TestProbe(t *testing.T) {
	l := os.Getenv("PROBE_LAYER")
	if l == "" {
		t.Skip()
	}
	for i := 0; i < 3; i++ {
		dst := filepath.Join(t.TempDir(), "r")
		os.Mkdir(dst, 0o755)
		u0, s0 := ru(syscall.RUSAGE_SELF)
		cu0, cs0 := ru(syscall.RUSAGE_CHILDREN)
		start := time.Now()
		f, _ := os.Open(l)
		if _, err := Apply(context.Background(), dst, f, ApplyOptions{Whiteouts: OverlayWhiteouts}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		el := time.Since(start)
		u1, s1 := ru(syscall.RUSAGE_SELF)
		cu1, cs1 := ru(syscall.RUSAGE_CHILDREN)
		t.Logf("berth wall %v user %v sys %v child user %v sys %v", el, u1-u0, s1-s0, cu1-cu0, cs1-cs0)
		os.RemoveAll(dst)
		os.Mkdir(dst, 0o755)
		if os.Getenv("PROBE_ONLY") != "" {
			continue
		}
		start = time.Now()
		exec.Command("tar", "-xzf", l, "-C", dst).Run()
		el = time.Since(start)
		cu2, cs2 := ru(syscall.RUSAGE_CHILDREN)
		t.Logf("tar   wall %v child user %v sys %v", el, cu2-cu1, cs2-cs1)
		os.RemoveAll(dst)
	}
}
