package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// sample is one gathered series: its labels and its value (a counter's or
// gauge's value, a histogram's sample count).
type sample struct {
	labels map[string]string
	value  float64
}

// gather returns the series of the metric called name in reg.
func gather(t *testing.T, reg prometheus.Gatherer, name string) []sample {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []sample
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			s := sample{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s.value = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s.value = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				s.value = float64(m.GetHistogram().GetSampleCount())
			}
			out = append(out, s)
		}
	}
	return out
}

// value is the value of the series of name with exactly labels, or -1.
func value(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
next:
	for _, s := range gather(t, reg, name) {
		if len(s.labels) != len(labels) {
			continue
		}
		for k, v := range labels {
			if s.labels[k] != v {
				continue next
			}
		}
		return s.value
	}
	return -1
}

func TestMetricsRecord(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveRPC("RunPodSandbox", "OK", 30*time.Millisecond)
	m.ObserveRPC("RunPodSandbox", "OK", 40*time.Millisecond)
	m.ObserveRPC("RunPodSandbox", "InvalidArgument", time.Millisecond)
	m.ObserveRPC("PullImage", "NotFound", time.Second)
	m.ObservePodStartup(2 * time.Second)
	m.ObservePull(time.Second)
	m.AddPulledBytes(1000)
	m.AddPulledBytes(24)
	m.AddPulledBytes(0)
	m.OOMKill()
	m.ContainerdRestarted()
	m.ContainerdReconnected()
	m.ContainerdReconnected()
	m.BuildFinished(BuildSuccess)
	m.BuildFinished(BuildFailure)
	m.ObserveBuildDuration(BuildSuccess, 3*time.Second)
	m.AddBuildSteps(5)
	m.AddBuildCacheHits(3)

	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"slipway_cri_request_duration_seconds", map[string]string{"method": "RunPodSandbox", "code": "OK"}, 2},
		{"slipway_cri_request_duration_seconds", map[string]string{"method": "RunPodSandbox", "code": "InvalidArgument"}, 1},
		{"slipway_cri_request_errors_total", map[string]string{"method": "RunPodSandbox", "code": "InvalidArgument"}, 1},
		{"slipway_cri_request_errors_total", map[string]string{"method": "RunPodSandbox", "code": "OK"}, -1},
		{"slipway_cri_request_errors_total", map[string]string{"method": "PullImage", "code": "NotFound"}, 1},
		{"slipway_pod_startup_duration_seconds", nil, 1},
		{"slipway_image_pull_duration_seconds", nil, 1},
		{"slipway_image_pull_bytes_total", nil, 1024},
		{"slipway_container_oom_kills_total", nil, 1},
		{"slipway_containerd_restarts_total", nil, 1},
		{"slipway_containerd_reconnects_total", nil, 2},
		{"slipway_builds_total", map[string]string{"status": "success"}, 1},
		{"slipway_builds_total", map[string]string{"status": "failure"}, 1},
		{"slipway_build_duration_seconds", map[string]string{"status": "success"}, 1},
		{"slipway_build_steps_total", nil, 5},
		{"slipway_build_cache_hits_total", nil, 3},
	} {
		if got := value(t, reg, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}

	// Registering twice on one registry names the clash.
	if _, err := New(reg); err == nil {
		t.Error("a second New on the same registry succeeded")
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.ObserveRPC("Version", "OK", time.Millisecond)
	m.ObservePodStartup(time.Second)
	m.ObservePull(time.Second)
	m.AddPulledBytes(1)
	m.OOMKill()
	m.ContainerdRestarted()
	m.ContainerdReconnected()
	m.BuildFinished(BuildSuccess)
	m.ObserveBuildDuration(BuildSuccess, time.Second)
	m.AddBuildSteps(1)
	m.AddBuildCacheHits(1)
}
