package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/cri"
	"github.com/slipway-dev/slipway/runtime/embedded"
	"github.com/slipway-dev/slipway/runtime/images"
)

const shutdownTimeout = 10 * time.Second

// run wires slipwayd together and serves until ctx is cancelled (SIGTERM or
// SIGINT), then shuts down cleanly: containers stay running in their shims.
func run(ctx context.Context, cfg Config) error {
	if err := os.MkdirAll(cfg.State, 0o711); err != nil {
		return fmt.Errorf("creating state dir: %w", err)
	}
	address := cfg.Containerd.Address
	if address == "" {
		ctrd, err := embedded.Start(ctx, embedded.Config{
			Binary:   cfg.Containerd.Binary,
			Root:     filepath.Join(cfg.Root, "containerd"),
			State:    filepath.Join(cfg.State, "containerd"),
			LogLevel: cfg.Containerd.LogLevel,
		})
		if err != nil {
			return fmt.Errorf("embedded containerd: %w", err)
		}
		defer ctrd.Stop()
		address = ctrd.Address()
	}
	client, err := containerd.New(address, containerd.WithDefaultNamespace(cfg.CRI.Namespace))
	if err != nil {
		return fmt.Errorf("connecting to containerd at %s: %w", address, err)
	}
	defer client.Close()

	builder, err := startBuilder(ctx, cfg, address)
	if err != nil {
		return err
	}
	defer builder.stop()
	if cfg.Builder.Only {
		log.G(ctx).Info("builder-only mode: not serving the CRI")
		return builder.wait(ctx)
	}

	imageService, err := images.NewService(ctx, images.Options{
		Client:      client,
		Snapshotter: cfg.CRI.Snapshotter,
		HostsDir:    cfg.Registry.ConfigPath,
	})
	if err != nil {
		return fmt.Errorf("image service: %w", err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go imageService.Watch(watchCtx, cfg.CRI.Namespace)

	pods, err := startPods(ctx, cfg, client)
	if err != nil {
		return err
	}
	containers, err := startContainers(watchCtx, cfg, client)
	if err != nil {
		return err
	}
	defer containers.runtime.Close()
	watchNetwork, watchNetworkStop := context.WithCancel(ctx)
	defer watchNetworkStop()
	go pods.network.Watch(watchNetwork)

	streamingServer, err := startStreaming(watchCtx, cfg.Streaming, cri.NewStreamRuntime(containers.runtime, pods.store))
	if err != nil {
		return err
	}
	server := cri.NewGRPCServer(cri.NewServer(cri.Options{
		Images:          imageService,
		Health:          containerdHealth{client},
		Network:         pods.network,
		PodRuntime:      pods.newRuntime(cfg, containers.runtime, imageService),
		Pods:            pods.store,
		Containers:      containers.runtime,
		ContainerStore:  containers.store,
		ContainerEvents: containers.events,
		Logs:            containers.logs,
		SeccompRoot:     cfg.CRI.SeccompProfileRoot,
		CgroupDriver:    cfg.cgroupDriver(),
		RuntimeVersion:  version,
		VerboseConfig:   cfg,
		Streaming:       streamingServer,
	}))
	listener, err := listenUnix(cfg.CRI.Socket)
	if err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- server.Serve(listener) }()
	log.G(ctx).WithField("socket", cfg.CRI.Socket).WithField("containerd", address).WithField("version", version).Info("slipwayd serving the CRI")

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving CRI: %w", err)
	case <-ctx.Done():
	}
	log.G(ctx).Info("shutting down")
	stopped := make(chan struct{})
	go func() { server.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(shutdownTimeout):
		server.Stop()
	}
	_ = os.Remove(cfg.CRI.Socket)
	return nil
}

// listenUnix listens on a root-only unix socket, replacing a stale one.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("creating socket dir: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("restricting %s to root: %w", path, err)
	}
	return l, nil
}

// containerdHealth answers the CRI's RuntimeReady condition.
type containerdHealth struct{ client *containerd.Client }

func (h containerdHealth) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	serving, err := h.client.IsServing(ctx)
	if err != nil {
		return err
	}
	if !serving {
		return errors.New("containerd is not serving")
	}
	return nil
}
