package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StateCollector reports pods and containers by state, counted from the
// in-memory indexes at every scrape: the numbers cannot drift from what
// List calls return, as counters kept beside every state change could.
// Every state is reported, 0 included, so a series never disappears.
type StateCollector struct {
	// Pods and Containers return the state of every pod and container
	// (pod.Store and container.Store); both are required.
	Pods       func() []runtimeapi.PodSandboxState
	Containers func() []runtimeapi.ContainerState
}

var (
	podsDesc = prometheus.NewDesc(Namespace+"_pods", "Pod sandboxes by state (ready, notready).",
		[]string{"state"}, nil)
	containersDesc = prometheus.NewDesc(Namespace+"_containers", "Containers by state (created, running, exited, unknown).",
		[]string{"state"}, nil)
)

var _ prometheus.Collector = StateCollector{}

// Describe sends the two gauges' descriptions.
func (c StateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- podsDesc
	ch <- containersDesc
}

// Collect counts the indexes now.
func (c StateCollector) Collect(ch chan<- prometheus.Metric) {
	pods := map[string]int{}
	for state := range runtimeapi.PodSandboxState_name {
		pods[PodStateName(runtimeapi.PodSandboxState(state))] = 0
	}
	for _, s := range c.Pods() {
		pods[PodStateName(s)]++
	}
	containers := map[string]int{}
	for state := range runtimeapi.ContainerState_name {
		containers[ContainerStateName(runtimeapi.ContainerState(state))] = 0
	}
	for _, s := range c.Containers() {
		containers[ContainerStateName(s)]++
	}
	for state, n := range pods {
		ch <- prometheus.MustNewConstMetric(podsDesc, prometheus.GaugeValue, float64(n), state)
	}
	for state, n := range containers {
		ch <- prometheus.MustNewConstMetric(containersDesc, prometheus.GaugeValue, float64(n), state)
	}
}

// PodStateName is the state label of a pod state: "ready" or "notready".
func PodStateName(s runtimeapi.PodSandboxState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SANDBOX_"))
}

// ContainerStateName is the state label of a container state: "created",
// "running", "exited" or "unknown".
func ContainerStateName(s runtimeapi.ContainerState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "CONTAINER_"))
}
