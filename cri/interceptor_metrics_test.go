package cri

import (
	"context"
	"fmt"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/slipway-dev/slipway/runtime/metrics"
)

// rpcSeries maps "method code" to the count of the CRI latency histogram
// and of the error counter.
func rpcSeries(t *testing.T, reg *prometheus.Registry) (latency, errs map[string]uint64) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	latency, errs = map[string]uint64{}, map[string]uint64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			key := labels["method"] + " " + labels["code"]
			switch f.GetName() {
			case "slipway_cri_request_duration_seconds":
				latency[key] = m.GetHistogram().GetSampleCount()
			case "slipway_cri_request_errors_total":
				errs[key] = uint64(m.GetCounter().GetValue())
			}
		}
	}
	return latency, errs
}

func TestInterceptorRecordsMethodAndCode(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	i := interceptor{metrics: m}
	call := func(method string, err error) {
		info := &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.RuntimeService/" + method}
		_, _ = i.unary(context.Background(), nil, info, func(context.Context, any) (any, error) { return "resp", err })
	}
	call("RunPodSandbox", nil)
	call("RunPodSandbox", nil)
	call("RunPodSandbox", fmt.Errorf("config.metadata is required: %w", errdefs.ErrInvalidArgument))
	call("StopContainer", fmt.Errorf("container %q: %w", "x", errdefs.ErrNotFound))
	_, _ = i.unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.RuntimeService/Version"},
		func(context.Context, any) (any, error) { panic("boom") })
	_ = i.stream(nil, fakeStream{}, &grpc.StreamServerInfo{FullMethod: "/runtime.v1.RuntimeService/GetContainerEvents"},
		func(any, grpc.ServerStream) error { return context.Canceled })

	latency, errs := rpcSeries(t, reg)
	wantLatency := map[string]uint64{
		"RunPodSandbox OK": 2, "RunPodSandbox InvalidArgument": 1, "StopContainer NotFound": 1,
		"Version Internal": 1, "GetContainerEvents Canceled": 1,
	}
	wantErrs := map[string]uint64{
		"RunPodSandbox InvalidArgument": 1, "StopContainer NotFound": 1, "Version Internal": 1, "GetContainerEvents Canceled": 1,
	}
	for name, got := range map[string]map[string]uint64{"latency": latency, "errors": errs} {
		want := map[string]map[string]uint64{"latency": wantLatency, "errors": wantErrs}[name]
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s by method and code = %v, want %v", name, got, want)
		}
	}
}
