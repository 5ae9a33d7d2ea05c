package metrics

import (
	"context"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyTimeout bounds one /readyz check.
const readyTimeout = 5 * time.Second

// HandlerOptions configure Handler.
type HandlerOptions struct {
	// Gatherer is the registry /metrics serves; required.
	Gatherer prometheus.Gatherer
	// Ready is nil when slipwayd is ready to serve, else the reason it is
	// not; required. It gets a context bounded by readyTimeout.
	Ready func(ctx context.Context) error
	// Pprof serves net/http/pprof under /debug/pprof/. It has no
	// authentication: serve it on loopback only.
	Pprof bool
}

// Handler serves /metrics (Prometheus text or protobuf), /healthz (200
// while the process serves HTTP), /readyz (200, or 503 with the reason)
// and, with o.Pprof, /debug/pprof/.
func Handler(o HandlerOptions) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := o.Ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if o.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
