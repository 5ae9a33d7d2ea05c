package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/imagevolume"
	"github.com/slipway-dev/slipway/runtime/logs"
	"github.com/slipway-dev/slipway/runtime/metrics"
)

// containerRuntime is what the CRI's container calls run on.
type containerRuntime struct {
	store   *container.Store
	runtime *container.Runtime
	events  *container.Events
	logs    loggers
}

// loadContainers loads the container records from containerd.
func loadContainers(ctx context.Context, client *containerd.Client) (*container.Store, error) {
	store := container.NewStore(client.ContainerService())
	if _, err := store.Load(ctx); err != nil {
		return nil, err
	}
	return store, nil
}

// startContainers runs containers over the loaded store: it follows their tasks
// (Reconcile, again after every containerd restart) and starts recording
// OOM kills until ctx is done. Close the runtime before the client.
func startContainers(ctx context.Context, cfg Config, client *containerd.Client, store *container.Store, hooks container.Hooks, shims container.Shims, m *metrics.Metrics) (*containerRuntime, error) {
	binary, err := helperBinary(cfg.CRI.LoggerBinary, "slipway-logger", "cri.logger_binary")
	if err != nil {
		return nil, err
	}
	l := loggers{binary: binary, namespace: cfg.CRI.Namespace, pidDir: filepath.Join(cfg.State, "loggers")}
	if err := os.MkdirAll(l.pidDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating logger pid dir: %w", err)
	}
	events := container.NewEvents()
	rt := container.New(container.Options{
		Client:        client,
		Store:         store,
		Events:        events,
		Snapshotter:   cfg.CRI.Snapshotter,
		SystemdCgroup: cfg.cgroupDriver() == "systemd",
		LogIO:         l.io,
		FIFODir:       filepath.Join(cfg.State, "fifo"),
		AttachDir:     filepath.Join(cfg.State, "attach"),
		ImageVolumes: imagevolume.New(imagevolume.Options{
			Client: client, Snapshotter: cfg.CRI.Snapshotter, Dir: filepath.Join(cfg.State, "image-volumes"),
		}),
		Hooks:   hooks,
		Metrics: m,
		Shims:   shims,
	})
	if err := rt.CleanupInterrupted(ctx); err != nil {
		log.G(ctx).WithError(err).Warn("cleaning up after interrupted container creations")
	}
	if err := rt.Reconcile(ctx); err != nil {
		log.G(ctx).WithError(err).Warn("reconciling containers (retried when containerd answers again)")
	}
	go rt.WatchOOM(ctx, cfg.CRI.Namespace)
	go rt.WatchContainerd(ctx, time.Second)
	return &containerRuntime{store: store, runtime: rt, events: events, logs: l}, nil
}

// loggers runs slipway-logger for each container with a log path: the
// containerd shim starts it, so logs keep flowing while slipwayd restarts.
type loggers struct {
	binary string
	// namespace is the containerd namespace of the containers.
	namespace string
	// pidDir holds one pid file per running logger.
	pidDir string
}

func (l loggers) pidFile(id string) string { return filepath.Join(l.pidDir, id+".pid") }

// io makes the task IO of c: the logger gets its output and serves it to
// attach clients, and the task reads attach.Stdin (if set) as its stdin. A
// container without a log path still gets a logger, writing to /dev/null,
// when attach is on.
func (l loggers) io(c container.Container, attach container.AttachPaths) (cio.Creator, error) {
	logPath := c.LogPath
	switch {
	case logPath == "" && attach.Socket == "":
		return cio.NullIO, nil
	case logPath == "":
		logPath = os.DevNull
	default:
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			return nil, fmt.Errorf("creating log directory: %w", err)
		}
	}
	args := logs.LoggerArgs{Path: logPath, PIDFile: l.pidFile(c.ID), TTY: c.Config.GetTty(), Attach: attach.Socket}
	if attach.Stdin != "" && !c.Config.GetTty() {
		// The shim cannot give the task stdin with a logger binary: run
		// the logger on FIFOs (logs.FIFOLogger).
		return func(string) (cio.IO, error) {
			fl, err := logs.StartFIFOLogger(l.binary, args, c.ID, l.namespace, attach.Stdout, attach.Stderr)
			if err != nil {
				return nil, err
			}
			return &shimIO{config: cio.Config{Stdin: attach.Stdin, Stdout: attach.Stdout, Stderr: attach.Stderr}, release: fl.Release}, nil
		}, nil
	}
	uri, err := logs.LogURI(l.binary, args)
	if err != nil {
		return nil, err
	}
	config := cio.Config{Stdin: attach.Stdin, Stdout: uri.String(), Stderr: uri.String(), Terminal: c.Config.GetTty()}
	return func(string) (cio.IO, error) { return &shimIO{config: config}, nil }, nil
}

// shimIO is task IO the shim and the logger handle by themselves: there is
// nothing to copy on slipwayd's side. release, if set, runs once the task
// is gone (Close, or Cancel on a failed create).
type shimIO struct {
	config  cio.Config
	release func()
}

func (s *shimIO) Config() cio.Config { return s.config }
func (s *shimIO) Cancel()            { s.Close() }
func (*shimIO) Wait()                {}
func (s *shimIO) Close() error {
	if s.release != nil {
		s.release()
	}
	return nil
}

// Reopen makes a running container's logger reopen its log path.
func (l loggers) Reopen(ctx context.Context, c container.Container) error {
	return logs.Reopen(ctx, l.pidFile(c.ID))
}
