// Package metrics owns berthd's Prometheus registry: gRPC call counts and
// latencies, content store size, garbage collection runs, and image pulls
// and pushes (in flight, bytes, duration, failures by reason). It serves
// them over HTTP only when an address is configured. It records what
// others report through its methods and must not import the packages it
// observes.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
)

// Metrics holds every metric berthd exports.
type Metrics struct {
	Registry *prometheus.Registry

	grpcCalls    *prometheus.CounterVec
	grpcDuration *prometheus.HistogramVec
	gcRuns       prometheus.Counter
	gcBlobs      prometheus.Counter
	gcBytes      prometheus.Counter
	gcLeases     prometheus.Counter
	gcDuration   prometheus.Histogram
	transfers    map[string]*transferMetrics // by op: "pull", "push"
}

// transferMetrics are the metrics of one kind of image transfer.
type transferMetrics struct {
	inFlight prometheus.Gauge
	bytes    prometheus.Counter
	duration prometheus.Histogram
	errors   *prometheus.CounterVec
}

// newTransferMetrics defines the metrics of op ("pull") under names like
// berth_image_pull_bytes_total; plural names the transfers ("pulls").
func newTransferMetrics(op, plural string) *transferMetrics {
	return &transferMetrics{
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_image_" + plural + "_in_flight", Help: "Image " + plural + " in progress.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_image_" + op + "_bytes_total", Help: "Bytes of blobs and manifests moved by image " + plural + " (retries included).",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "berth_image_" + op + "_duration_seconds", Help: "Duration of image " + plural + " that succeeded.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 11),
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_image_" + op + "_errors_total", Help: "Image " + plural + " that failed, by reason.",
		}, []string{"reason"}),
	}
}

func (t *transferMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{t.inFlight, t.bytes, t.duration, t.errors}
}

// BlobStatser reports how many blobs, and bytes, the content store holds.
type BlobStatser interface {
	BlobStats() (count, bytes int64)
}

// New registers berth's metrics, with content gauges read from blobs at
// scrape time, plus the Go runtime and process collectors.
func New(blobs BlobStatser) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		grpcCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_grpc_requests_total", Help: "gRPC calls handled, by method and status code.",
		}, []string{"method", "code"}),
		grpcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "berth_grpc_request_duration_seconds", Help: "Latency of gRPC calls, by method.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"method"}),
		gcRuns:   prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_gc_runs_total", Help: "Garbage collection runs."}),
		gcBlobs:  prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_gc_blobs_removed_total", Help: "Blobs removed from disk by garbage collection."}),
		gcBytes:  prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_gc_bytes_freed_total", Help: "Bytes freed on disk by garbage collection."}),
		gcLeases: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_gc_leases_expired_total", Help: "Expired leases removed by garbage collection."}),
		gcDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "berth_gc_duration_seconds", Help: "Duration of garbage collection runs.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
	}
	m.transfers = map[string]*transferMetrics{
		"pull": newTransferMetrics("pull", "pulls"),
		"push": newTransferMetrics("push", "pushes"),
	}
	for _, t := range m.transfers {
		m.Registry.MustRegister(t.collectors()...)
	}
	m.Registry.MustRegister(m.grpcCalls, m.grpcDuration, m.gcRuns, m.gcBlobs, m.gcBytes, m.gcLeases, m.gcDuration,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "berth_content_blobs", Help: "Blobs in the content store."},
			func() float64 { n, _ := blobs.BlobStats(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "berth_content_bytes", Help: "Bytes of blobs in the content store."},
			func() float64 { _, b := blobs.BlobStats(); return float64(b) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// ObserveCall records one gRPC call.
func (m *Metrics) ObserveCall(method string, code codes.Code, d time.Duration) {
	m.grpcCalls.WithLabelValues(method, code.String()).Inc()
	m.grpcDuration.WithLabelValues(method).Observe(d.Seconds())
}

// ObserveGC records one garbage collection run.
func (m *Metrics) ObserveGC(blobs, bytes, leases int64, d time.Duration) {
	m.gcRuns.Inc()
	m.gcBlobs.Add(float64(blobs))
	m.gcBytes.Add(float64(bytes))
	m.gcLeases.Add(float64(leases))
	m.gcDuration.Observe(d.Seconds())
}

// TransferStarted counts one image transfer of kind op ("pull" or "push")
// in flight, until TransferFinished. Other ops are ignored.
func (m *Metrics) TransferStarted(op string) {
	if t := m.transfers[op]; t != nil {
		t.inFlight.Inc()
	}
}

// TransferBytes adds n bytes moved by a transfer of kind op.
func (m *Metrics) TransferBytes(op string, n int64) {
	if t := m.transfers[op]; t != nil {
		t.bytes.Add(float64(n))
	}
}

// TransferFinished ends a transfer of kind op: its duration is recorded if
// it succeeded (reason ""), its reason counted otherwise.
func (m *Metrics) TransferFinished(op string, d time.Duration, reason string) {
	t := m.transfers[op]
	if t == nil {
		return
	}
	t.inFlight.Dec()
	if reason == "" {
		t.duration.Observe(d.Seconds())
		return
	}
	t.errors.WithLabelValues(reason).Inc()
}

// Serve serves /metrics on addr until ctx ends. It returns once listening,
// with the address actually bound, and runs the server until ctx is done;
// done receives the server's final error.
func (m *Metrics) Serve(ctx context.Context, addr string) (bound string, done <-chan error, err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("metrics listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() {
		err := srv.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	return l.Addr().String(), errc, nil
}
