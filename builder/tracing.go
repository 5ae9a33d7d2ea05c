package builder

import (
	"sync"

	"github.com/moby/buildkit/util/tracing"
	"github.com/moby/buildkit/util/tracing/detect"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
)

var recorderOnce sync.Once

// buildTracing records each build's trace in memory, as buildkitd does, so
// that BuildKit can keep it with the build's history record (`buildx
// history trace`). It returns the gRPC option that starts a span for every
// control API call, the exporter the controller forwards client spans to,
// and the provider to shut down with the Builder. Nothing leaves the node.
func buildTracing() (grpc.ServerOption, sdktrace.SpanExporter, *sdktrace.TracerProvider) {
	recorderOnce.Do(func() {
		if detect.Recorder == nil {
			detect.Recorder = detect.NewTraceRecorder()
		}
	})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(detect.Recorder))
	stats := tracing.ServerStatsHandler(
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})),
	)
	return grpc.StatsHandler(stats), detect.Recorder, tp
}
