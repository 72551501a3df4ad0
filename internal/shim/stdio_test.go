package shim

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	shimapi "github.com/berth-dev/berth/api/shim/v1"
)

// attachPipe attaches one end of an in-memory connection to io and returns
// the other end, positioned after the response line.
func attachPipe(t *testing.T, io *stdio, wg *sync.WaitGroup) (net.Conn, *bufio.Reader) {
	t.Helper()
	server, client := net.Pipe()
	t.Cleanup(func() { client.Close() })
	io.attach(server, bufio.NewReader(server), &process{id: "p"}, []byte("{}\n"), wg)
	r := bufio.NewReader(client)
	if line, err := r.ReadString('\n'); err != nil || line != "{}\n" {
		t.Fatalf("response line %q, %v", line, err)
	}
	return client, r
}

func TestAttachersGetOutputThenEnd(t *testing.T) {
	var wg sync.WaitGroup
	s, err := newStdio(false, true, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	c1, r1 := attachPipe(t, s, &wg)
	_, r2 := attachPipe(t, s, &wg)
	s.startPumps(&wg)

	// The process writes; its ends close.
	if _, err := s.child.stdout.Write([]byte("out")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.child.stderr.Write([]byte("err")); err != nil {
		t.Fatal(err)
	}
	// Input from an attacher reaches the process's stdin.
	if err := shimapi.WriteFrame(c1, shimapi.FrameStdin, []byte("in")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2)
	if _, err := io.ReadFull(s.child.stdin, got); err != nil || string(got) != "in" {
		t.Errorf("stdin got %q, %v", got, err)
	}
	s.closeChildEnds()

	for i, r := range []*bufio.Reader{r1, r2} {
		frames := map[shimapi.FrameKind]string{}
		buf := make([]byte, shimapi.MaxFramePayload)
		for {
			kind, p, err := shimapi.ReadFrame(r, buf)
			if err != nil {
				t.Fatalf("attacher %d: %v", i, err)
			}
			if kind == shimapi.FrameEnd {
				break
			}
			frames[kind] += string(p)
		}
		if frames[shimapi.FrameStdout] != "out" || frames[shimapi.FrameStderr] != "err" {
			t.Errorf("attacher %d got %q", i, frames)
		}
	}
	// A late attacher gets the end at once.
	_, r3 := attachPipe(t, s, &wg)
	if kind, _, err := shimapi.ReadFrame(r3, make([]byte, shimapi.MaxFramePayload)); err != nil || kind != shimapi.FrameEnd {
		t.Errorf("late attacher: %d, %v", kind, err)
	}
	c1.Close()
	wg.Wait()
}

func TestSlowAttacherIsDroppedNotWaitedFor(t *testing.T) {
	var wg sync.WaitGroup
	s, err := newStdio(false, false, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	slow, _ := attachPipe(t, s, &wg) // never reads again
	_, fast := attachPipe(t, s, &wg)
	received := make(chan int)
	go func() {
		n, _ := io.Copy(io.Discard, fast)
		received <- int(n)
	}()
	s.startPumps(&wg)

	// Twice the backlog limit: the process never blocks on the slow one.
	chunk := bytes.Repeat([]byte{'x'}, 16<<10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2 * maxAttachBacklog / len(chunk) {
			if _, err := s.child.stdout.Write(chunk); err != nil {
				t.Error(err)
				return
			}
		}
		s.closeChildEnds()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the process blocked on a slow attacher")
	}
	if n := <-received; n < 2*maxAttachBacklog {
		t.Errorf("fast attacher got %d bytes, want at least %d", n, 2*maxAttachBacklog)
	}
	s.mu.Lock()
	left := len(s.attachers)
	s.mu.Unlock()
	if left != 0 {
		t.Errorf("%d attachers left after the end", left)
	}
	// The slow attacher's connection was closed.
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, slow); err != nil {
		t.Errorf("slow attacher: %v, want its connection closed", err)
	}
	wg.Wait()
}
