package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Code, string(b)
}

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveRPC("Version", "OK", time.Millisecond)
	var notReady error = errors.New("containerd is not answering: connection refused")
	h := Handler(HandlerOptions{Gatherer: reg, Ready: func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the readiness check runs without a deadline")
		}
		return notReady
	}})

	if code, body := get(t, h, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	code, body := get(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "containerd is not answering") {
		t.Errorf("/readyz while not ready = %d %q, want 503 with the reason", code, body)
	}
	notReady = nil
	if code, body := get(t, h, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz when ready = %d %q", code, body)
	}
	code, body = get(t, h, "/metrics")
	if code != http.StatusOK || !strings.Contains(body, `slipway_cri_request_duration_seconds_count{code="OK",method="Version"} 1`) {
		t.Errorf("/metrics = %d, body lacks the Version call:\n%s", code, body)
	}
	if code, _ := get(t, h, "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without Pprof = %d, want 404", code)
	}

	withPprof := Handler(HandlerOptions{Gatherer: reg, Ready: func(context.Context) error { return nil }, Pprof: true})
	if code, body := get(t, withPprof, "/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ with Pprof = %d", code)
	}
}
