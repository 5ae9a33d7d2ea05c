package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/log"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/slipway-dev/slipway/cri"
	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/embedded"
	"github.com/slipway-dev/slipway/runtime/images"
	"github.com/slipway-dev/slipway/runtime/metrics"
	"github.com/slipway-dev/slipway/runtime/pod"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const shutdownTimeout = 10 * time.Second

// run wires slipwayd together and serves until ctx is cancelled (SIGTERM or
// SIGINT), then shuts down cleanly: containers stay running in their shims.
func run(ctx context.Context, cfg Config) error {
	if err := makeStateDir(cfg.State); err != nil {
		return err
	}
	reg, m, err := newMetrics()
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	var ready readiness
	if _, err := startMetrics(ctx, cfg.Metrics, reg, &ready); err != nil {
		return err
	}
	// From the first signal on, /readyz and systemd say so.
	context.AfterFunc(ctx, ready.stop)
	context.AfterFunc(ctx, func() { notifySystemd(context.WithoutCancel(ctx), daemon.SdNotifyStopping) })
	address := cfg.Containerd.Address
	if address == "" {
		ctrd, err := embedded.Start(ctx, embedded.Config{
			Binary:   cfg.Containerd.Binary,
			Root:     filepath.Join(cfg.Root, "containerd"),
			State:    filepath.Join(cfg.State, "containerd"),
			LogLevel: cfg.Containerd.LogLevel,
			Metrics:  m,
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
	if cfg.Containerd.Address != "" && !cfg.Builder.Only {
		if err := checkNoContainerdCRI(ctx, client.IntrospectionService(), address, cfg.CRI.Namespace); err != nil {
			return err
		}
	}

	health := containerdHealth{client}
	builder, err := startBuilder(ctx, cfg, address, m)
	if err != nil {
		return err
	}
	defer builder.stop()
	if cfg.Builder.Only {
		ready.set(health.ready)
		log.G(ctx).Info("builder-only mode: not serving the CRI")
		notifySystemd(ctx, daemon.SdNotifyReady)
		return builder.wait(ctx)
	}

	imageService, err := images.NewService(ctx, images.Options{
		Client:      client,
		Snapshotter: cfg.CRI.Snapshotter,
		HostsDir:    cfg.Registry.ConfigPath,
		Metrics:     m,
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
	containerStore, err := loadContainers(ctx, client)
	if err != nil {
		return err
	}
	cdi := cdiRegistry(ctx, cfg.CRI)
	nriHost, err := newNRIHost(cfg, client, pods.store, containerStore, pods.infra, cdi)
	if err != nil {
		return err
	}
	containers, err := startContainers(watchCtx, cfg, client, containerStore, nriHost.containerHooks(), pods.shims, m)
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
	userns, err := container.UserNamespacesSupported(ctx, client, cfg.CRI.Snapshotter)
	if err != nil {
		log.G(ctx).WithError(err).Warn("user namespaces are off: cannot tell whether the snapshotter ID-maps layers")
	}
	podRuntime := pods.newRuntime(cfg, containers.runtime, imageService, nriHost.podHooks())
	if err := nriHost.start(ctx, containers.runtime, cfg.NRI.SocketPath); err != nil {
		return err
	}
	defer nriHost.stop()
	server := cri.NewGRPCServer(cri.NewServer(cri.Options{
		Images:          imageService,
		Health:          health,
		Network:         pods.network,
		PodRuntime:      podRuntime,
		Pods:            pods.store,
		Containers:      containers.runtime,
		ContainerStore:  containers.store,
		ContainerEvents: containers.events,
		Logs:            containers.logs,
		FsCapacity:      imageService,
		SeccompRoot:     cfg.CRI.SeccompProfileRoot,
		CDI:             cdi,
		CgroupDriver:    cfg.cgroupDriver(),
		RuntimeVersion:  version,
		UserNamespaces:  userns,
		VerboseConfig:   cfg,
		Streaming:       streamingServer,
		Metrics:         m,
	}))
	if err := reg.Register(stateCollector(pods.store, containers.store)); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	listener, err := listenUnix(cfg.CRI.Socket)
	if err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- server.Serve(listener) }()
	log.G(ctx).WithField("socket", cfg.CRI.Socket).WithField("containerd", address).WithField("version", version).Info("slipwayd serving the CRI")
	ready.set(func(ctx context.Context) error {
		if err := health.ready(ctx); err != nil {
			return err
		}
		if err := pods.network.Status(); err != nil {
			return fmt.Errorf("the pod network is not ready: %w", err)
		}
		return nil
	})
	if ctx.Err() == nil { // a signal during start-up has sent STOPPING=1
		notifySystemd(ctx, daemon.SdNotifyReady)
	}

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
	// Shim groups whose last pod just left would keep their keeper (and
	// shim) until the next start: close them now.
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := pods.shims.CloseEmpty(closeCtx); err != nil {
		log.G(ctx).WithError(err).Warn("closing empty shim groups (their keepers are deleted at the next start)")
	}
	return nil
}

// makeStateDir creates slipwayd's state directory (mode 0711) or, when it
// exists writable by group or others (a Kubernetes emptyDir is 0777), takes
// those write bits away: the sockets live in it. A sticky directory (/tmp)
// is shared with other users and refused.
func makeStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("creating state dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	mode := fi.Mode()
	if mode.Perm()&0o022 == 0 {
		return nil
	}
	if mode&os.ModeSticky != 0 {
		return fmt.Errorf("state dir %s is a shared directory (mode %v): give slipwayd a directory of its own", dir, mode)
	}
	if err := os.Chmod(dir, mode.Perm()&^0o022); err != nil {
		return fmt.Errorf("making state dir %s writable by its owner only: %w", dir, err)
	}
	return nil
}

// listenUnix listens on a root-only unix socket, replacing a stale one. The
// socket is mode 0600 from its creation, not only after a chmod that a
// client could race. Its directory, created 0711 when missing, must not be
// writable by other users, who could replace the socket with their own.
func listenUnix(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("creating socket dir: %w", err)
	}
	if err := checkSocketDir(dir); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale socket: %w", err)
	}
	// Linux creates the socket file with the mode of the socket's inode.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var chmodErr error
		if err := c.Control(func(fd uintptr) { chmodErr = unix.Fchmod(int(fd), 0o600) }); err != nil {
			return err
		}
		return chmodErr
	}}
	l, err := lc.Listen(context.Background(), "unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("restricting %s to root: %w", path, err)
	}
	return l, nil
}

// checkSocketDir refuses a socket directory that a user other than root
// (or slipwayd's own user) owns or that every user can write.
func checkSocketDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("socket dir: %w", err)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("socket dir %s is writable by every user (mode %v), who could replace the socket: use a directory only root can write", dir, fi.Mode())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("socket dir %s belongs to uid %d, who could replace the socket: use a directory root owns", dir, st.Uid)
	}
	return nil
}

// containerdHealth answers the CRI's RuntimeReady condition and /readyz.
type containerdHealth struct{ client *containerd.Client }

// ready is Ping for /readyz: its error says what is not ready.
func (h containerdHealth) ready(ctx context.Context) error {
	if err := h.Ping(ctx); err != nil {
		return fmt.Errorf("containerd is not answering: %w", err)
	}
	return nil
}

// stateCollector counts pods and containers by state from their stores.
func stateCollector(pods *pod.Store, containers *container.Store) metrics.StateCollector {
	return metrics.StateCollector{
		Pods: func() []runtimeapi.PodSandboxState {
			var states []runtimeapi.PodSandboxState
			for _, p := range pods.Values() {
				states = append(states, p.State)
			}
			return states
		},
		Containers: func() []runtimeapi.ContainerState {
			var states []runtimeapi.ContainerState
			for _, c := range containers.Values() {
				states = append(states, c.State)
			}
			return states
		},
	}
}

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
