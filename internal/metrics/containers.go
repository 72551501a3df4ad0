package metrics

import "github.com/prometheus/client_golang/prometheus"

// ContainerSample is what a scrape reports of one running container.
type ContainerSample struct {
	Namespace, ID    string
	Status           string // running, paused, created
	CPUSeconds       float64
	MemoryBytes      uint64 // usage, page cache included
	MemoryWorkingSet uint64
	MemoryLimitBytes uint64 // 0 when unlimited
	OOMKills         uint64
	Pids             uint64
}

// ContainerSampler lists the running containers' figures at scrape time
// (the task runtime).
type ContainerSampler interface {
	ContainerSamples() []ContainerSample
}

var (
	containerLabels     = []string{"namespace", "id"}
	descContainers      = prometheus.NewDesc("berth_containers", "Containers with a task, by status.", []string{"status"}, nil)
	descContainerCPU    = prometheus.NewDesc("berth_container_cpu_seconds_total", "CPU time used by the container's processes.", containerLabels, nil)
	descContainerMemory = prometheus.NewDesc("berth_container_memory_usage_bytes", "Memory charged to the container, page cache included.", containerLabels, nil)
	descContainerWS     = prometheus.NewDesc("berth_container_memory_working_set_bytes", "Memory usage less inactive file pages, as the kubelet counts it.", containerLabels, nil)
	descContainerLimit  = prometheus.NewDesc("berth_container_memory_limit_bytes", "The container's memory limit (absent when unlimited).", containerLabels, nil)
	descContainerOOM    = prometheus.NewDesc("berth_container_oom_kills_total", "Processes of the container the OOM killer ended.", containerLabels, nil)
	descContainerPids   = prometheus.NewDesc("berth_container_pids", "Processes and threads in the container.", containerLabels, nil)
)

// containerCollector turns a ContainerSampler's samples into metrics.
type containerCollector struct{ sampler ContainerSampler }

func (c containerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descContainers, descContainerCPU, descContainerMemory, descContainerWS, descContainerLimit, descContainerOOM, descContainerPids} {
		ch <- d
	}
}

func (c containerCollector) Collect(ch chan<- prometheus.Metric) {
	byStatus := map[string]int{}
	for _, s := range c.sampler.ContainerSamples() {
		byStatus[s.Status]++
		l := []string{s.Namespace, s.ID}
		ch <- prometheus.MustNewConstMetric(descContainerCPU, prometheus.CounterValue, s.CPUSeconds, l...)
		ch <- prometheus.MustNewConstMetric(descContainerMemory, prometheus.GaugeValue, float64(s.MemoryBytes), l...)
		ch <- prometheus.MustNewConstMetric(descContainerWS, prometheus.GaugeValue, float64(s.MemoryWorkingSet), l...)
		if s.MemoryLimitBytes > 0 {
			ch <- prometheus.MustNewConstMetric(descContainerLimit, prometheus.GaugeValue, float64(s.MemoryLimitBytes), l...)
		}
		ch <- prometheus.MustNewConstMetric(descContainerOOM, prometheus.CounterValue, float64(s.OOMKills), l...)
		ch <- prometheus.MustNewConstMetric(descContainerPids, prometheus.GaugeValue, float64(s.Pids), l...)
	}
	for _, st := range []string{"created", "running", "paused"} {
		ch <- prometheus.MustNewConstMetric(descContainers, prometheus.GaugeValue, float64(byStatus[st]), st)
	}
}

// WatchContainers adds per-container metrics read from s at each scrape.
func (m *Metrics) WatchContainers(s ContainerSampler) {
	m.Registry.MustRegister(containerCollector{sampler: s})
}
