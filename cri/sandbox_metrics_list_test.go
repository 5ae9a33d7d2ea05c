package cri

import (
	"context"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/runtime/cgroupstats"
	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/images"
	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestMetricsMatchDescriptors checks that a full sample yields every
// described metric, each with one value per label key of its descriptor.
func TestMetricsMatchDescriptors(t *testing.T) {
	resp, err := (&Server{}).ListMetricDescriptors(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	descs := map[string]*runtimeapi.MetricDescriptor{}
	for _, d := range resp.Descriptors {
		if d.Help == "" || len(d.LabelKeys) == 0 {
			t.Errorf("%s: help %q, label keys %v", d.Name, d.Help, d.LabelKeys)
		}
		if descs[d.Name] != nil {
			t.Errorf("%s described twice", d.Name)
		}
		descs[d.Name] = d
	}

	now := time.Unix(1700000000, 0)
	m := metricSet{ts: now.UnixNano(), labels: []string{"pod", "ns", "app", "c1", "busybox"}}
	m.container(containerSample{
		container: container.Container{ID: "c1", StartedAt: now.Add(-time.Minute),
			Resources: &runtimeapi.LinuxContainerResources{CpuShares: 2, MemoryLimitInBytes: 1 << 20}},
		cgroup: cgroupstats.Stats{
			CPUUsageNanos: 2_500_000_000, MemoryWorkingSetBytes: 4096, PageFaults: 10, MajorPageFaults: 1,
			IO: []cgroupstats.DeviceIO{{Major: 8, ReadBytes: 512}},
		},
		procs:      &cgroupstats.Processes{Processes: 1, FileDescriptors: 3},
		layerBytes: 8192,
		capacity:   &images.Capacity{Mountpoint: "/var/lib/snap", Bytes: 1 << 30, InodesTotal: 100, InodesFree: 50},
	}, now)
	m.network([]pod.InterfaceStats{{Name: "eth0", RxBytes: 100, TxBytes: 200}})

	seen := map[string]uint64{}
	for _, metric := range m.out {
		d := descs[metric.Name]
		if d == nil {
			t.Errorf("%s is not described", metric.Name)
			continue
		}
		if len(metric.LabelValues) != len(d.LabelKeys) {
			t.Errorf("%s: label values %v for keys %v", metric.Name, metric.LabelValues, d.LabelKeys)
		}
		if _, ok := seen[metric.Name]; !ok {
			seen[metric.Name] = metric.Value.GetValue()
		}
	}
	for name := range descs {
		if _, ok := seen[name]; !ok {
			t.Errorf("%s is described but never reported", name)
		}
	}
	for name, want := range map[string]uint64{
		"container_cpu_usage_seconds_total":      2,
		"container_memory_working_set_bytes":     4096,
		"container_memory_failures_total":        10,
		"container_fs_usage_bytes":               8192,
		"container_fs_reads_bytes_total":         512,
		"container_spec_cpu_shares":              2,
		"container_spec_cpu_period":              100000,
		"container_spec_memory_limit_bytes":      1 << 20,
		"container_start_time_seconds":           1700000000 - 60,
		"container_network_receive_bytes_total":  100,
		"container_network_transmit_bytes_total": 200,
	} {
		if seen[name] != want {
			t.Errorf("%s = %d, want %d", name, seen[name], want)
		}
	}
}

// TestMetricDescriptorsKubelet checks the names kubelet's summary and
// resource metrics read are described.
func TestMetricDescriptorsKubelet(t *testing.T) {
	resp, _ := (&Server{}).ListMetricDescriptors(context.Background(), nil)
	have := map[string]bool{}
	for _, d := range resp.Descriptors {
		have[d.Name] = true
	}
	for _, name := range []string{
		"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_memory_rss",
		"container_network_receive_bytes_total", "container_network_transmit_bytes_total",
		"container_network_receive_errors_total", "container_network_transmit_errors_total",
		"container_fs_usage_bytes", "container_fs_inodes_free", "container_start_time_seconds",
	} {
		if !have[name] {
			t.Errorf("%s is not described", name)
		}
	}
}
