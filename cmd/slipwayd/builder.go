package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"

	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/builder"
	"github.com/slipway-dev/slipway/runtime/metrics"
)

// builderServer is the running embedded builder and its listeners. A nil
// *builderServer (builder disabled) is valid: stop does nothing and wait
// blocks until ctx is done.
type builderServer struct {
	b      *builder.Builder
	socket string
	// serveErr receives the first listener failure.
	serveErr chan error
}

// startBuilder starts the embedded BuildKit on containerd at address and
// serves it on cfg.Builder.Socket (and on TCP with mutual TLS when
// configured). It returns nil when the builder is disabled.
func startBuilder(ctx context.Context, cfg Config, address string, m *metrics.Metrics) (_ *builderServer, retErr error) {
	if !cfg.Builder.Enabled {
		return nil, nil
	}
	var tlsConfig *tls.Config
	if cfg.Builder.TCPAddress != "" {
		var err error
		if tlsConfig, err = builder.ServerTLSConfig(cfg.Builder.TLSCert, cfg.Builder.TLSKey, cfg.Builder.TLSCA); err != nil {
			return nil, err
		}
	}
	opts := cfg.builderOptions(address)
	opts.Metrics = m
	b, err := builder.New(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("builder: %w", err)
	}
	defer func() {
		if retErr != nil {
			_ = b.Close(0)
		}
	}()
	listeners := []net.Listener{}
	defer func() {
		if retErr != nil {
			for _, l := range listeners {
				l.Close()
			}
		}
	}()
	unixListener, err := listenUnix(cfg.Builder.Socket)
	if err != nil {
		return nil, fmt.Errorf("builder: %w", err)
	}
	listeners = append(listeners, unixListener)
	if tlsConfig != nil {
		l, err := net.Listen("tcp", cfg.Builder.TCPAddress)
		if err != nil {
			return nil, fmt.Errorf("builder: listening on %s: %w", cfg.Builder.TCPAddress, err)
		}
		listeners = append(listeners, tls.NewListener(l, tlsConfig))
	}
	s := &builderServer{b: b, socket: cfg.Builder.Socket, serveErr: make(chan error, len(listeners))}
	for _, l := range listeners {
		go func() {
			if err := b.Serve(l); err != nil {
				err = fmt.Errorf("serving builder on %s: %w", l.Addr(), err)
				log.G(ctx).WithError(err).Error("builder listener failed")
				s.serveErr <- err
			}
		}()
		log.G(ctx).WithField("address", l.Addr().String()).Info("slipwayd serving the builder")
	}
	return s, nil
}

// wait blocks until ctx is done (nil) or a listener fails (its error).
func (s *builderServer) wait(ctx context.Context) error {
	if s == nil {
		<-ctx.Done()
		return nil
	}
	select {
	case err := <-s.serveErr:
		return err
	case <-ctx.Done():
		return nil
	}
}

// stop lets running builds finish for up to shutdownTimeout, then stops
// the builder and removes its socket.
func (s *builderServer) stop() {
	if s == nil {
		return
	}
	if err := s.b.Close(shutdownTimeout); err != nil {
		log.L.WithError(err).Warn("stopping builder")
	}
	_ = os.Remove(s.socket)
}
