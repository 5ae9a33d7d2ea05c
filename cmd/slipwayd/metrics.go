package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/containerd/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/slipway-dev/slipway/runtime/metrics"
)

// MetricsConfig configures the metrics listener (TOML table [metrics]):
// Prometheus metrics on /metrics, /healthz, /readyz and, behind Pprof,
// net/http/pprof.
type MetricsConfig struct {
	// Address is the listener's TCP host:port; empty turns it off. Port 0
	// picks a free port (logged). A port another process holds fails
	// slipwayd's start. A host other than a loopback IP or "localhost"
	// needs TLSCert and TLSKey, so metrics leave the node only by a
	// deliberate choice.
	Address string `toml:"address" json:"address"`
	// Pprof serves net/http/pprof under /debug/pprof/ on the listener;
	// it has no authentication, so only on a loopback Address.
	Pprof bool `toml:"pprof" json:"pprof"`
	// TLSCert and TLSKey, both set, serve https; both empty serve http.
	TLSCert string `toml:"tls_cert" json:"tlsCert"`
	TLSKey  string `toml:"tls_key" json:"tlsKey"`
}

// defaultMetricsAddress is on loopback: off the network unless asked.
const defaultMetricsAddress = "127.0.0.1:9898"

func defaultMetricsConfig() MetricsConfig {
	return MetricsConfig{Address: defaultMetricsAddress}
}

// validate names the first metrics setting that cannot work.
func (m MetricsConfig) validate() error {
	if (m.TLSCert == "") != (m.TLSKey == "") {
		return errors.New("metrics.tls_cert and metrics.tls_key must be set together")
	}
	if m.Address == "" {
		if m.Pprof {
			return errors.New("metrics.pprof needs metrics.address: pprof is served on the metrics listener")
		}
		return nil
	}
	loopback, err := isLoopbackAddress("metrics.address", m.Address)
	if err != nil {
		return err
	}
	if loopback {
		return nil
	}
	if m.Pprof {
		return fmt.Errorf("metrics.pprof needs a loopback metrics.address, got %q: pprof has no authentication", m.Address)
	}
	if m.TLSCert == "" {
		return fmt.Errorf("metrics.address %q is not a loopback address: serving metrics beyond this node needs "+
			"metrics.tls_cert and metrics.tls_key", m.Address)
	}
	return nil
}

// newMetrics returns a registry with the Go runtime and process
// collectors and slipwayd's own metrics on it.
func newMetrics() (*prometheus.Registry, *metrics.Metrics, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, nil, err
	}
	m, err := metrics.New(reg)
	return reg, m, err
}

// readiness is what /readyz reports: not ready while slipwayd starts,
// then the check run sets, and not ready again from the start of the
// shutdown on.
type readiness struct {
	check    atomic.Pointer[func(context.Context) error]
	stopping atomic.Bool
}

// set makes check the readiness check.
func (r *readiness) set(check func(context.Context) error) { r.check.Store(&check) }

// stop makes /readyz answer that slipwayd is shutting down, for good.
func (r *readiness) stop() { r.stopping.Store(true) }

// ready is nil when slipwayd is ready, else the reason it is not.
func (r *readiness) ready(ctx context.Context) error {
	if r.stopping.Load() {
		return errors.New("slipwayd is shutting down")
	}
	check := r.check.Load()
	if check == nil {
		return errors.New("slipwayd is starting")
	}
	return (*check)(ctx)
}

// startMetrics serves reg, health, readiness and (when configured) pprof
// on cfg.Address until ctx is done, and returns the address it listens
// on; nil when cfg.Address is empty. A port that is taken is an error
// naming metrics.address: several slipwayd on one host need one each.
func startMetrics(ctx context.Context, cfg MetricsConfig, reg prometheus.Gatherer, ready *readiness) (net.Addr, error) {
	if cfg.Address == "" {
		return nil, nil
	}
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("metrics.tls_cert and metrics.tls_key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	lis, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("metrics.address %s: %w (give each slipwayd on a host its own port, port 0 for a free one, or an empty address for no metrics listener)", cfg.Address, err)
	}
	addr := lis.Addr()
	if tlsConfig != nil {
		lis = tls.NewListener(lis, tlsConfig)
	}
	srv := &http.Server{
		Handler: metrics.Handler(metrics.HandlerOptions{Gatherer: reg, Ready: ready.ready, Pprof: cfg.Pprof}),
		// pprof's profile and trace stream for their ?seconds=.
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.G(ctx).WithError(err).Error("metrics server stopped")
		}
	}()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	log.G(ctx).WithField("address", addr.String()).WithField("tls", tlsConfig != nil).WithField("pprof", cfg.Pprof).
		Info("serving metrics, /healthz and /readyz")
	return addr, nil
}
