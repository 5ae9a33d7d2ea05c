package builder

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/slipway-dev/slipway/runtime/metrics"
)

// TestMeterProviderRecordsBuilds drives the provider the way BuildKit's
// solver does at the end of each build (recordBuildCompletion): the same
// instrument names, attributes and calls.
func TestMeterProviderRecordsBuilds(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	meter := meterProvider(m).Meter("github.com/moby/buildkit/solver/llbsolver")
	builds, err := meter.Int64Counter("buildkit.builds")
	if err != nil {
		t.Fatal(err)
	}
	steps, err := meter.Int64Counter("buildkit.builds.steps")
	if err != nil {
		t.Fatal(err)
	}
	duration, err := meter.Float64Histogram("buildkit.build.duration", metric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := meter.Int64Counter("buildkit.something.else")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, failed := range []bool{false, false, true} {
		status := "success"
		attrs := []attribute.KeyValue{attribute.String("status", status)}
		if failed {
			status = "failure"
			attrs = []attribute.KeyValue{attribute.String("status", status), attribute.String("error_code", "Unknown")}
		}
		if !builds.Enabled(ctx) || !duration.Enabled(ctx) {
			t.Fatal("build instruments report themselves disabled")
		}
		builds.Add(ctx, 1, metric.WithAttributes(attrs...))
		steps.Add(ctx, 4, metric.WithAttributes(attribute.String("kind", "completed")))
		steps.Add(ctx, 3, metric.WithAttributes(attribute.String("kind", "cached")))
		steps.Add(ctx, 7, metric.WithAttributes(attribute.String("kind", "total")))
		steps.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", "warnings")))
		duration.Record(ctx, 1.5, metric.WithAttributes(attribute.String("status", status)))
	}
	other.Add(ctx, 100)

	got := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			key := f.GetName()
			for _, l := range s.GetLabel() {
				key += " " + l.GetValue()
			}
			switch {
			case s.GetHistogram() != nil:
				got[key] = float64(s.GetHistogram().GetSampleCount())
				got[key+" sum"] = s.GetHistogram().GetSampleSum()
			case s.GetCounter() != nil:
				got[key] = s.GetCounter().GetValue()
			}
		}
	}
	for key, want := range map[string]float64{
		"slipway_builds_total success":               2,
		"slipway_builds_total failure":               1,
		"slipway_build_duration_seconds success":     2,
		"slipway_build_duration_seconds success sum": 3,
		"slipway_build_duration_seconds failure":     1,
		"slipway_build_steps_total":                  21,
		"slipway_build_cache_hits_total":             9,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
}
