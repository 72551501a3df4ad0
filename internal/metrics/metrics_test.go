package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type blobStats struct{}

func (blobStats) BlobStats() (int64, int64) { return 2, 2048 }

// scrape returns the registry's metrics in the text format.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, err := io.ReadAll(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func TestTransferMetrics(t *testing.T) {
	m := New(blobStats{})
	m.TransferStarted("pull")
	m.TransferStarted("pull")
	m.TransferStarted("push")
	m.TransferBytes("pull", 1000)
	m.TransferBytes("pull", 24)
	m.TransferBytes("push", 7)
	m.TransferFinished("pull", 1500*time.Millisecond, "")
	m.TransferFinished("push", time.Second, "unauthorized")
	m.TransferStarted("copy") // not a transfer berth measures
	m.TransferFinished("copy", time.Second, "other")

	body := scrape(t, m)
	for _, want := range []string{
		"berth_image_pulls_in_flight 1\n",
		"berth_image_pushes_in_flight 0\n",
		"berth_image_pull_bytes_total 1024\n",
		"berth_image_push_bytes_total 7\n",
		"berth_image_pull_duration_seconds_count 1\n",
		"berth_image_pull_duration_seconds_sum 1.5\n",
		"berth_image_push_duration_seconds_count 0\n",
		`berth_image_push_errors_total{reason="unauthorized"} 1` + "\n",
		"berth_content_blobs 2\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, "copy") || strings.Contains(body, "berth_image_pull_errors_total{") {
		t.Errorf("unexpected series:\n%s", body)
	}
}

type samples []ContainerSample

func (s samples) ContainerSamples() []ContainerSample { return s }

func TestContainerMetrics(t *testing.T) {
	m := New(blobStats{})
	m.WatchContainers(samples{
		{Namespace: "default", ID: "a", Status: "running", CPUSeconds: 1.5, MemoryBytes: 100, MemoryWorkingSet: 80, MemoryLimitBytes: 1 << 20, Pids: 3},
		{Namespace: "k8s.io", ID: "b", Status: "paused", MemoryBytes: 5, OOMKills: 1},
	})
	body := scrape(t, m)
	for _, want := range []string{
		`berth_container_cpu_seconds_total{id="a",namespace="default"} 1.5`,
		`berth_container_memory_usage_bytes{id="a",namespace="default"} 100`,
		`berth_container_memory_working_set_bytes{id="a",namespace="default"} 80`,
		`berth_container_memory_limit_bytes{id="a",namespace="default"} 1.048576e+06`,
		`berth_container_oom_kills_total{id="b",namespace="k8s.io"} 1`,
		`berth_container_pids{id="a",namespace="default"} 3`,
		`berth_containers{status="running"} 1`,
		`berth_containers{status="paused"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, `berth_container_memory_limit_bytes{id="b"`) {
		t.Error("an unlimited container has a limit series")
	}
}
