package shim

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The reaper gets the exit of a child it started, and that of an orphan it
// inherited as subreaper even when the orphan died before anyone watched
// its pid (the init exiting before its pid file is read).
func TestReaperReapsChildrenAndOrphans(t *testing.T) {
	r, err := newReaper()
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd := exec.Command("/bin/sh", "-c", "sleep 0.1 & echo $!; exit 3")
	cmd.Stdout = pw
	ch, err := r.start(cmd)
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	if ws := <-ch; exitCode(ws) != 3 {
		t.Errorf("child exit %d, want 3", exitCode(ws))
	}
	time.Sleep(300 * time.Millisecond) // the orphan is long gone
	select {
	case ws := <-r.watch(orphan):
		if exitCode(ws) != 0 {
			t.Errorf("orphan exit %d, want 0", exitCode(ws))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the orphan's exit was not kept")
	}
}
