// Package metrics defines slipwayd's Prometheus metrics and the HTTP
// handler that serves them with /healthz, /readyz and, optionally, pprof.
//
// Every metric lives in a Metrics value registered on a registry the
// caller passes in (there is no package-level state), and every method of
// a nil *Metrics does nothing, so packages take a *Metrics in their
// options and tests that do not look at metrics leave it nil.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every metric slipway defines.
const Namespace = "slipway"

// Metrics are slipwayd's own metrics. The zero value is not usable; use
// New. A nil *Metrics records nothing.
type Metrics struct {
	rpcDuration    *prometheus.HistogramVec
	rpcErrors      *prometheus.CounterVec
	podStartup     prometheus.Histogram
	pullDuration   prometheus.Histogram
	pullBytes      prometheus.Counter
	oomKills       prometheus.Counter
	ctrdRestarts   prometheus.Counter
	ctrdReconnects prometheus.Counter
	builds         *prometheus.CounterVec
	buildDuration  *prometheus.HistogramVec
	buildSteps     prometheus.Counter
	buildCacheHits prometheus.Counter
}

// Histogram buckets, in seconds.
var (
	rpcBuckets     = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	startupBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	pullBuckets    = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	buildBuckets   = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}
)

// New returns slipwayd's metrics registered on reg. It fails only when reg
// already holds metrics of the same names.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		rpcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "cri", Name: "request_duration_seconds",
			Help:    "Latency of CRI calls by method and gRPC code (a stream's whole life for streaming calls).",
			Buckets: rpcBuckets,
		}, []string{"method", "code"}),
		rpcErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "cri", Name: "request_errors_total",
			Help: "CRI calls that failed, by method and gRPC code.",
		}, []string{"method", "code"}),
		podStartup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "pod", Name: "startup_duration_seconds",
			Help:    "Time from RunPodSandbox to the start of the pod's first container.",
			Buckets: startupBuckets,
		}),
		pullDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "image", Name: "pull_duration_seconds",
			Help:    "Duration of successful CRI image pulls, unpacking included.",
			Buckets: pullBuckets,
		}),
		pullBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "image", Name: "pull_bytes_total",
			Help: "Bytes CRI image pulls fetched from registries (content already on the node is not fetched).",
		}),
		oomKills: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "container", Name: "oom_kills_total",
			Help: "Container exits recorded as OOMKilled.",
		}),
		ctrdRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "containerd", Name: "restarts_total",
			Help: "Times the embedded containerd died and slipwayd started it again.",
		}),
		ctrdReconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "containerd", Name: "reconnects_total",
			Help: "Times containerd answered again after it stopped answering (containers are then reconciled).",
		}),
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "builds_total",
			Help: "Builds the embedded BuildKit finished, by status (success or failure).",
		}, []string{"status"}),
		buildDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "build", Name: "duration_seconds",
			Help:    "Duration of builds, by status (success or failure).",
			Buckets: buildBuckets,
		}, []string{"status"}),
		buildSteps: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "build", Name: "steps_total",
			Help: "Build steps (vertices) of finished builds.",
		}),
		buildCacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "build", Name: "cache_hits_total",
			Help: "Build steps of finished builds that the build cache answered.",
		}),
	}
	for _, c := range []prometheus.Collector{
		m.rpcDuration, m.rpcErrors, m.podStartup, m.pullDuration, m.pullBytes, m.oomKills,
		m.ctrdRestarts, m.ctrdReconnects, m.builds, m.buildDuration, m.buildSteps, m.buildCacheHits,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveRPC records one finished CRI call: method is the bare RPC name
// ("RunPodSandbox"), code its gRPC code's name ("OK", "NotFound"). Calls
// with a code other than OK also count as errors.
func (m *Metrics) ObserveRPC(method, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.rpcDuration.WithLabelValues(method, code).Observe(d.Seconds())
	if code != "OK" {
		m.rpcErrors.WithLabelValues(method, code).Inc()
	}
}

// ObservePodStartup records the start-up of a pod whose first container
// just started: d runs from its RunPodSandbox.
func (m *Metrics) ObservePodStartup(d time.Duration) {
	if m == nil {
		return
	}
	m.podStartup.Observe(d.Seconds())
}

// ObservePull records a successful image pull that took d.
func (m *Metrics) ObservePull(d time.Duration) {
	if m == nil {
		return
	}
	m.pullDuration.Observe(d.Seconds())
}

// AddPulledBytes counts n bytes fetched from a registry by a pull.
func (m *Metrics) AddPulledBytes(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.pullBytes.Add(float64(n))
}

// OOMKill counts a container exit recorded as OOMKilled.
func (m *Metrics) OOMKill() {
	if m == nil {
		return
	}
	m.oomKills.Inc()
}

// ContainerdRestarted counts a restart of the embedded containerd.
func (m *Metrics) ContainerdRestarted() {
	if m == nil {
		return
	}
	m.ctrdRestarts.Inc()
}

// ContainerdReconnected counts containerd answering again after it did not.
func (m *Metrics) ContainerdReconnected() {
	if m == nil {
		return
	}
	m.ctrdReconnects.Inc()
}

// Build statuses, as BuildKit reports them.
const (
	BuildSuccess = "success"
	BuildFailure = "failure"
)

// BuildFinished counts a finished build of the given status.
func (m *Metrics) BuildFinished(status string) {
	if m == nil {
		return
	}
	m.builds.WithLabelValues(status).Inc()
}

// ObserveBuildDuration records how long a build of the given status took.
func (m *Metrics) ObserveBuildDuration(status string, d time.Duration) {
	if m == nil {
		return
	}
	m.buildDuration.WithLabelValues(status).Observe(d.Seconds())
}

// AddBuildSteps counts n steps (vertices) of finished builds.
func (m *Metrics) AddBuildSteps(n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.buildSteps.Add(float64(n))
}

// AddBuildCacheHits counts n steps of finished builds that the cache
// answered.
func (m *Metrics) AddBuildCacheHits(n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.buildCacheHits.Add(float64(n))
}
