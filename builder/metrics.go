package builder

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/slipway-dev/slipway/runtime/metrics"
)

// BuildKit's solver reports every finished build on three OpenTelemetry
// instruments of its MeterProvider (solver/llbsolver/metrics.go): a count
// by status, steps by kind, and the duration by status. meterProvider
// hands it instruments that record those into slipway's Prometheus
// metrics; every other instrument BuildKit asks for is a no-op.
const (
	buildsInstrument   = "buildkit.builds"
	stepsInstrument    = "buildkit.builds.steps"
	durationInstrument = "buildkit.build.duration"
)

// meterProvider is the controller's MeterProvider: m's build metrics, or a
// no-op one for a nil m.
func meterProvider(m *metrics.Metrics) metric.MeterProvider {
	if m == nil {
		return noop.NewMeterProvider()
	}
	return buildMeterProvider{m: m}
}

type buildMeterProvider struct {
	noop.MeterProvider
	m *metrics.Metrics
}

func (p buildMeterProvider) Meter(string, ...metric.MeterOption) metric.Meter {
	return buildMeter{m: p.m}
}

type buildMeter struct {
	noop.Meter
	m *metrics.Metrics
}

func (b buildMeter) Int64Counter(name string, _ ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	switch name {
	case buildsInstrument:
		return int64Counter{add: func(_ int64, attrs attribute.Set) {
			b.m.BuildFinished(status(attrs))
		}}, nil
	case stepsInstrument:
		return int64Counter{add: func(n int64, attrs attribute.Set) {
			switch kind, _ := attrs.Value("kind"); kind.AsString() {
			case "total":
				b.m.AddBuildSteps(n)
			case "cached":
				b.m.AddBuildCacheHits(n)
			}
		}}, nil
	}
	return noop.Int64Counter{}, nil
}

func (b buildMeter) Float64Histogram(name string, _ ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	if name != durationInstrument {
		return noop.Float64Histogram{}, nil
	}
	return float64Histogram{record: func(seconds float64, attrs attribute.Set) {
		b.m.ObserveBuildDuration(status(attrs), time.Duration(seconds*float64(time.Second)))
	}}, nil
}

// status is a build's "status" attribute: success or failure.
func status(attrs attribute.Set) string {
	if v, ok := attrs.Value("status"); ok && v.AsString() == metrics.BuildFailure {
		return metrics.BuildFailure
	}
	return metrics.BuildSuccess
}

type int64Counter struct {
	noop.Int64Counter
	add func(n int64, attrs attribute.Set)
}

func (c int64Counter) Add(_ context.Context, n int64, opts ...metric.AddOption) {
	c.add(n, metric.NewAddConfig(opts).Attributes())
}

func (int64Counter) Enabled(context.Context) bool { return true }

type float64Histogram struct {
	noop.Float64Histogram
	record func(v float64, attrs attribute.Set)
}

func (h float64Histogram) Record(_ context.Context, v float64, opts ...metric.RecordOption) {
	h.record(v, metric.NewRecordConfig(opts).Attributes())
}

func (float64Histogram) Enabled(context.Context) bool { return true }
