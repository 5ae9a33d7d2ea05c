package cri

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/metrics"
	"github.com/slipway-dev/slipway/runtime/pod"
)

func TestPodStartupObservedOnFirstStartOnly(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	store := container.NewStore(nil)
	s := &Server{opts: Options{ContainerStore: store, Metrics: m}}
	p := pod.Sandbox{ID: "pod1", CreatedAt: time.Now().Add(-time.Second)}
	started := func() uint64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == "slipway_pod_startup_duration_seconds" {
				return f.GetMetric()[0].GetHistogram().GetSampleCount()
			}
		}
		t.Fatal("no pod start-up histogram")
		return 0
	}
	running := runtimeapi.ContainerState_CONTAINER_RUNNING

	// Another pod's started container does not matter.
	store.Add(container.Container{ID: "other", PodID: "pod2", State: running, StartedAt: time.Now()})
	// The first container's start is the pod's start-up.
	store.Add(container.Container{ID: "a", PodID: "pod1", State: running, StartedAt: time.Now()})
	s.observePodStartup(p, "a")
	if got := started(); got != 1 {
		t.Fatalf("after the first start: %d observations, want 1", got)
	}
	// A created-but-never-started container does not make a start second;
	// a started one does.
	store.Add(container.Container{ID: "b", PodID: "pod1", State: runtimeapi.ContainerState_CONTAINER_CREATED})
	store.Add(container.Container{ID: "c", PodID: "pod1", State: running, StartedAt: time.Now()})
	s.observePodStartup(p, "c")
	if got := started(); got != 1 {
		t.Errorf("after a second start: %d observations, want 1", got)
	}
}
