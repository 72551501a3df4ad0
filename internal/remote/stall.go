package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// StallPolicy configures the stall detector. A transfer is stalled when,
// over the last Window of time spent waiting on the network, fewer than
// MinRate*Window bytes moved (either way). Time the caller spends between
// reads is not counted, so a slow consumer is never taken for a slow
// registry; nor is the time a registry takes to answer once a request body
// has been sent in full (finishing a large upload can take a while). A
// stalled request is aborted with an error wrapping ErrStalled; Fetch then
// resumes at the next mirror.
type StallPolicy struct {
	MinRate int64         // bytes per second; 0 means 1 KiB/s; negative disables the detector
	Window  time.Duration // 0 means 30s
}

func (p StallPolicy) withDefaults() StallPolicy {
	if p.MinRate == 0 {
		p.MinRate = 1 << 10
	}
	if p.Window <= 0 {
		p.Window = 30 * time.Second
	}
	return p
}

// meter watches one request's throughput. A timer samples, every
// window/8, the bytes moved and the time spent waiting on the network; if
// the newest sample at least a window of waiting older shows too few bytes,
// onStall runs (once). A nil *meter does nothing.
type meter struct {
	minBytes float64
	window   time.Duration
	interval time.Duration
	onStall  func()

	mu        sync.Mutex
	bytes     int64
	waiting   int // >0 while blocked on the network
	waitStart time.Time
	waited    time.Duration
	samples   []sample
	timer     *time.Timer
	stopped   bool
	sent      bool // the request phase ended (see endRequest)
}

type sample struct {
	waited time.Duration
	bytes  int64
}

func newMeter(p StallPolicy, onStall func()) *meter {
	if p.MinRate < 0 {
		return nil
	}
	m := &meter{
		minBytes: float64(p.MinRate) * p.Window.Seconds(),
		window:   p.Window,
		interval: max(p.Window/8, 5*time.Millisecond),
		onStall:  onStall,
		samples:  []sample{{}},
	}
	m.timer = time.AfterFunc(m.interval, m.tick)
	return m
}

func (m *meter) begin() {
	if m == nil {
		return
	}
	m.mu.Lock()
	if m.waiting == 0 {
		m.waitStart = time.Now()
	}
	m.waiting++
	m.mu.Unlock()
}

func (m *meter) end() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.waiting--
	if m.waiting == 0 {
		m.waited += time.Since(m.waitStart)
	}
	m.mu.Unlock()
}

// endRequest ends the wait begun for sending a request: when its body has
// been sent in full, or when the response arrived, whichever comes first.
func (m *meter) endRequest() {
	if m == nil {
		return
	}
	m.mu.Lock()
	sent := m.sent
	m.sent = true
	m.mu.Unlock()
	if !sent {
		m.end()
	}
}

func (m *meter) add(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.mu.Lock()
	m.bytes += int64(n)
	m.mu.Unlock()
}

func (m *meter) stop() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.stopped = true
	m.timer.Stop()
	m.mu.Unlock()
}

func (m *meter) tick() {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return
	}
	w := m.waited
	if m.waiting > 0 {
		w += time.Since(m.waitStart)
	}
	m.samples = append(m.samples, sample{waited: w, bytes: m.bytes})
	for i := len(m.samples) - 1; i >= 0; i-- {
		s := m.samples[i]
		if w-s.waited < m.window {
			continue
		}
		if float64(m.bytes-s.bytes) < m.minBytes {
			m.stopped = true
			m.mu.Unlock()
			m.onStall()
			return
		}
		m.samples = m.samples[i:]
		break
	}
	m.timer.Reset(m.interval)
	m.mu.Unlock()
}

// stallError is the cause given to a stalled request's context.
func stallError(host string, p StallPolicy) error {
	return fmt.Errorf("registry %s: less than %d bytes/s over %s: %w", host, p.MinRate, p.Window, ErrStalled)
}

// meteredBody is a response body read under a meter. Closing it stops the
// meter and releases the request's context.
type meteredBody struct {
	rc     io.ReadCloser
	m      *meter
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func (b *meteredBody) Read(p []byte) (int, error) {
	b.m.begin()
	n, err := b.rc.Read(p)
	b.m.end()
	b.m.add(n)
	if err != nil && err != io.EOF {
		if cause := context.Cause(b.ctx); errors.Is(cause, ErrStalled) {
			err = cause
		}
	}
	return n, err
}

func (b *meteredBody) Close() error {
	b.m.stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// countingBody counts request body bytes into a meter. It is spent once
// read or closed (see hostTransport).
type countingBody struct {
	rc    io.ReadCloser
	m     *meter
	spent atomic.Bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	b.spent.Store(true)
	n, err := b.rc.Read(p)
	b.m.add(n)
	if err == io.EOF {
		b.m.endRequest()
	}
	return n, err
}

func (b *countingBody) Close() error {
	b.spent.Store(true)
	return b.rc.Close()
}
