package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeIndex stands in for the pod and container stores: the collector
// reads it at every scrape.
type fakeIndex struct {
	pods       []runtimeapi.PodSandboxState
	containers []runtimeapi.ContainerState
}

func (f *fakeIndex) collector() StateCollector {
	return StateCollector{
		Pods:       func() []runtimeapi.PodSandboxState { return f.pods },
		Containers: func() []runtimeapi.ContainerState { return f.containers },
	}
}

func TestStateCollectorCountsAtScrape(t *testing.T) {
	idx := &fakeIndex{}
	reg := prometheus.NewRegistry()
	if err := reg.Register(idx.collector()); err != nil {
		t.Fatal(err)
	}
	check := func(name string, want map[string]float64) {
		t.Helper()
		got := map[string]float64{}
		for _, s := range gather(t, reg, name) {
			got[s.labels["state"]] = s.value
		}
		if len(got) != len(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
		for state, n := range want {
			if got[state] != n {
				t.Errorf("%s{state=%q} = %v, want %v (all: %v)", name, state, got[state], n, got)
			}
		}
	}
	// Empty indexes: every state is reported, at 0.
	check("slipway_pods", map[string]float64{"ready": 0, "notready": 0})
	check("slipway_containers", map[string]float64{"created": 0, "running": 0, "exited": 0, "unknown": 0})

	idx.pods = []runtimeapi.PodSandboxState{runtimeapi.PodSandboxState_SANDBOX_READY, runtimeapi.PodSandboxState_SANDBOX_READY,
		runtimeapi.PodSandboxState_SANDBOX_NOTREADY}
	idx.containers = []runtimeapi.ContainerState{runtimeapi.ContainerState_CONTAINER_RUNNING, runtimeapi.ContainerState_CONTAINER_EXITED,
		runtimeapi.ContainerState_CONTAINER_EXITED, runtimeapi.ContainerState_CONTAINER_CREATED}
	check("slipway_pods", map[string]float64{"ready": 2, "notready": 1})
	check("slipway_containers", map[string]float64{"created": 1, "running": 1, "exited": 2, "unknown": 0})

	// Objects leave the index: the next scrape says so, nothing drifts.
	idx.pods = idx.pods[:1]
	idx.containers = nil
	check("slipway_pods", map[string]float64{"ready": 1, "notready": 0})
	check("slipway_containers", map[string]float64{"created": 0, "running": 0, "exited": 0, "unknown": 0})
}
