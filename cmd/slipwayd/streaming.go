package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/containerd/log"
	"k8s.io/cri-streaming/pkg/streaming"

	"github.com/slipway-dev/slipway/cri"
)

// StreamingConfig configures the streaming server of exec, attach and
// port-forward sessions (TOML table [streaming]).
type StreamingConfig struct {
	// Address is the TCP host:port the server listens on; port 0 picks a
	// free port. The session URLs carry the address the server listens
	// on, so use a concrete IP that kubelet (or crictl) can reach. A host
	// other than a loopback IP or "localhost" needs TLSCert and TLSKey: the
	// sessions run commands in containers.
	Address string `toml:"address" json:"address"`
	// TLSCert and TLSKey, both set, serve https; both empty serve http.
	TLSCert string `toml:"tls_cert" json:"tlsCert"`
	TLSKey  string `toml:"tls_key" json:"tlsKey"`
	// IdleTimeout ends a session after this long without traffic, as a Go
	// duration ("4h", "30m").
	IdleTimeout string `toml:"idle_timeout" json:"idleTimeout"`
}

func defaultStreamingConfig() StreamingConfig {
	return StreamingConfig{Address: "127.0.0.1:0", IdleTimeout: cri.DefaultStreamIdleTimeout.String()}
}

// validate names the first streaming setting that cannot work.
func (s StreamingConfig) validate() error {
	if s.Address == "" {
		return errors.New("streaming.address must not be empty")
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		return errors.New("streaming.tls_cert and streaming.tls_key must be set together")
	}
	loopback, err := isLoopbackAddress("streaming.address", s.Address)
	if err != nil {
		return err
	}
	if !loopback && s.TLSCert == "" {
		return fmt.Errorf("streaming.address %q is not a loopback address: serving exec, attach and port-forward "+
			"sessions beyond this node needs streaming.tls_cert and streaming.tls_key", s.Address)
	}
	if _, err := s.idleTimeout(); err != nil {
		return err
	}
	return nil
}

// isLoopbackAddress reports whether host:port, the value of the config
// key named key, names a loopback host: a loopback IP or "localhost". An
// empty host (all interfaces) is not.
func isLoopbackAddress(key, address string) (bool, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return false, fmt.Errorf("%s must be host:port, got %q: %w", key, address, err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

func (s StreamingConfig) idleTimeout() (time.Duration, error) {
	if s.IdleTimeout == "" {
		return cri.DefaultStreamIdleTimeout, nil
	}
	d, err := time.ParseDuration(s.IdleTimeout)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("streaming.idle_timeout must be a positive duration such as 4h, got %q", s.IdleTimeout)
	}
	return d, nil
}

// startStreaming listens on the configured address and serves sessions run
// by rt until ctx is done.
func startStreaming(ctx context.Context, cfg StreamingConfig, rt streaming.Runtime) (*cri.StreamingServer, error) {
	idle, err := cfg.idleTimeout()
	if err != nil {
		return nil, err
	}
	sc := cri.StreamingConfig{Addr: cfg.Address, IdleTimeout: idle}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("streaming server TLS: %w", err)
		}
		sc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv, err := cri.NewStreamingServer(sc, rt)
	if err != nil {
		return nil, err
	}
	go func() {
		if err := srv.Serve(); err != nil {
			log.G(ctx).WithError(err).Error("streaming server stopped")
		}
	}()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	log.G(ctx).WithField("address", srv.Addr().String()).WithField("tls", sc.TLS != nil).Info("streaming server listening")
	return srv, nil
}
