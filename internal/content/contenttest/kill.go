package contenttest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/content"
	"github.com/opencontainers/go-digest"
)

// childEnv names the environment variable that makes Run act as the child
// process of ResumeAfterKill. It holds a JSON childSpec.
const childEnv = "BERTH_CONTENTTEST_CHILD"

// offsetPrefix starts the line on which the child reports how many bytes
// the store has accepted.
const offsetPrefix = "contenttest-offset "

// childSpec tells the child what to write where.
type childSpec struct {
	Test string // name of the test that called Run
	Root string // store root
	Ref  string
	Seed byte // the data is randomBytes(Seed, Size)
	Size int
}

func childSpecFromEnv(t *testing.T) (childSpec, bool) {
	raw, ok := os.LookupEnv(childEnv)
	if !ok {
		return childSpec{}, false
	}
	var spec childSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatalf("contenttest: %s: %v", childEnv, err)
	}
	return spec, true
}

// runChild opens the store, writes a quarter of the data, reports the offset
// on stdout and goes on writing slowly, never reaching the end, until the
// parent kills it.
func runChild(t *testing.T, factory Factory, spec childSpec) {
	if spec.Test != t.Name() {
		t.Skipf("contenttest: this process is the child of %s", spec.Test)
	}
	ctx := testContext(t)
	s, closeFn, err := factory(ctx, spec.Root)
	if err != nil {
		t.Fatalf("contenttest child: open store in %s: %v", spec.Root, err)
	}
	defer closeFn()
	data := randomBytes(spec.Seed, spec.Size)
	w := openWriter(t, s, content.WriterOpts{Ref: spec.Ref, Total: int64(spec.Size), Expected: digest.FromBytes(data)})
	head := spec.Size / 4
	writeChunks(t, w, data[:head], 64<<10)
	st, err := w.Status()
	if err != nil {
		t.Fatalf("contenttest child: Writer.Status: %v", err)
	}
	fmt.Printf("%s%d\n", offsetPrefix, st.Offset)

	const chunk = 4096
	deadline := time.Now().Add(time.Minute)
	for off := head; time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if off+chunk < spec.Size {
			writeChunks(t, w, data[off:off+chunk], chunk)
			off += chunk
		}
	}
	t.Fatal("contenttest child: not killed within a minute")
}

// runPattern is the -test.run pattern selecting exactly the test name.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

func testResumeAfterKill(t *testing.T, factory Factory) {
	spec := childSpec{
		Test: t.Name()[:strings.LastIndex(t.Name(), "/")],
		Root: t.TempDir(),
		Ref:  "killed-writer",
		Seed: 26,
		Size: 4 << 20,
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run="+runPattern(spec.Test), "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	var output bytes.Buffer // the child's stderr and, once it has been read, stdout
	cmd.Stderr = &output
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child writer: %v", err)
	}

	// The scanner sends the reported offset, or -1 if stdout ends first,
	// and keeps the other lines (where the testing package reports).
	offsets := make(chan int64, 1)
	scanned := make(chan struct{})
	var stdoutLines strings.Builder
	go func() {
		defer close(scanned)
		sent := false
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			v, ok := strings.CutPrefix(sc.Text(), offsetPrefix)
			if n, err := strconv.ParseInt(v, 10, 64); ok && err == nil && !sent {
				offsets <- n
				sent = true
				continue
			}
			stdoutLines.WriteString(sc.Text() + "\n")
		}
		if !sent {
			offsets <- -1
		}
	}()
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			cmd.Process.Kill()
			<-scanned
			cmd.Wait()
			output.WriteString(stdoutLines.String())
		})
	}
	t.Cleanup(stop)

	var reported int64
	select {
	case reported = <-offsets:
	case <-time.After(time.Minute):
		stop()
		t.Fatalf("child writer reported no offset within a minute; output:\n%s", output.Bytes())
	}
	if reported <= 0 {
		stop()
		t.Fatalf("child writer reported offset %d; output:\n%s", reported, output.Bytes())
	}
	time.Sleep(20 * time.Millisecond) // kill it in the middle of its slow writes
	stop()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child writer ended with %v, not by SIGKILL; output:\n%s", cmd.ProcessState, output.Bytes())
	}

	ctx := testContext(t)
	s, _ := openStore(t, factory, spec.Root)
	st, err := s.Status(ctx, spec.Ref)
	if err != nil {
		t.Fatalf("Status after killing the writer: %v", err)
	}
	t.Logf("child writer reported offset %d; the store holds %d bytes after SIGKILL", reported, st.Offset)
	if st.Offset < reported || st.Offset >= int64(spec.Size) {
		t.Errorf("Status().Offset after killing the writer = %d, want within [%d, %d)", st.Offset, reported, spec.Size)
	}
	data := randomBytes(spec.Seed, spec.Size)
	w := openWriter(t, s, content.WriterOpts{Ref: spec.Ref, Total: int64(spec.Size), Expected: digest.FromBytes(data)})
	defer w.Close()
	if wst, err := w.Status(); err != nil || wst.Offset != st.Offset {
		t.Errorf("resumed Writer.Status() = %+v, %v; want offset %d", wst, err, st.Offset)
	}
	resumeAndCommit(t, s, w, data)
}
