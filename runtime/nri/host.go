// Package nri hosts the Node Resource Interface (github.com/containerd/nri)
// for slipway's runtime: NRI plugins connect to its socket (or are launched
// from the plugin directory), are synchronized with every pod and container
// slipway keeps, get their lifecycle events and adjust containers at
// creation. The pod and container runtimes call the Host's hooks at the
// points and under the locks their contracts name (pod.Hooks,
// container.Hooks); the Host only translates records to NRI's messages and
// applies what plugins answer.
package nri

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/log"
	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/pod"
	"github.com/slipway-dev/slipway/runtime/spec"
)

// Config configures the Host; empty fields take NRI's defaults.
type Config struct {
	// SocketPath is the socket external plugins connect to.
	SocketPath string
	// PluginPath holds plugins launched at start-up (NN-name executables);
	// PluginConfigPath their configuration drop-ins.
	PluginPath, PluginConfigPath string
	// RegistrationTimeout bounds a plugin's registration; RequestTimeout
	// its handling of one request.
	RegistrationTimeout, RequestTimeout time.Duration
}

// Options are what the Host reads of the runtime. All fields but CDI are
// required.
type Options struct {
	Config
	// RuntimeName and RuntimeVersion are told to plugins.
	RuntimeName, RuntimeVersion string
	Pods                        *pod.Store
	Containers                  *container.Store
	// Spec loads container id's OCI spec.
	Spec func(ctx context.Context, id string) (*specs.Spec, error)
	// InfraPid is the pid of a pod's infra process.
	InfraPid func(ctx context.Context, id string) (uint32, error)
	// CDI resolves the CDI devices plugins inject; nil (CDI off) refuses
	// them. It is the one field that may be nil.
	CDI spec.CDIRegistry
}

// Updater applies the changes plugins ask for to containers other than
// the one an event is about. Its calls run no NRI hooks.
type Updater interface {
	// UpdateResources gives a container new resources.
	UpdateResources(ctx context.Context, id string, res *specs.LinuxResources) error
	// Evict stops a container.
	Evict(ctx context.Context, id string) error
}

// Host is slipwayd's NRI runtime side. Its hooks may be called before
// Start (they then reach no plugin) and after Stop.
type Host struct {
	opts Options
	nri  *adaptation.Adaptation
	// plugins counts the connected plugins: events are only translated
	// when some plugin listens.
	plugins atomic.Int64
	// updater is set by Start.
	updater atomic.Pointer[Updater]

	mu sync.Mutex
	// podsStopped are the pods plugins were told stopped, so a retried
	// StopPodSandbox tells them once; mu guards it.
	podsStopped map[string]bool
}

// New returns a Host that has not started listening. The request and
// registration timeouts are process-wide in the nri library.
func New(opts Options) (*Host, error) {
	h := &Host{opts: opts, podsStopped: map[string]bool{}}
	var nriOpts []adaptation.Option
	if opts.SocketPath != "" {
		nriOpts = append(nriOpts, adaptation.WithSocketPath(opts.SocketPath))
	}
	if opts.PluginPath != "" {
		nriOpts = append(nriOpts, adaptation.WithPluginPath(opts.PluginPath))
	}
	if opts.PluginConfigPath != "" {
		nriOpts = append(nriOpts, adaptation.WithPluginConfigPath(opts.PluginConfigPath))
	}
	nriOpts = append(nriOpts, adaptation.WithMetrics(pluginCounter{&h.plugins}))
	if opts.RegistrationTimeout > 0 {
		adaptation.SetPluginRegistrationTimeout(opts.RegistrationTimeout)
	}
	if opts.RequestTimeout > 0 {
		adaptation.SetPluginRequestTimeout(opts.RequestTimeout)
	}
	a, err := adaptation.New(opts.RuntimeName, opts.RuntimeVersion, h.synchronize, h.updateFromPlugin, nriOpts...)
	if err != nil {
		return nil, fmt.Errorf("nri: %w", err)
	}
	h.nri = a
	return h, nil
}

// Start launches the pre-installed plugins, synchronizes them and starts
// accepting plugin connections. u applies plugins' updates.
func (h *Host) Start(u Updater) error {
	h.updater.Store(&u)
	if err := h.nri.Start(); err != nil {
		return fmt.Errorf("starting nri: %w", err)
	}
	return nil
}

// Stop closes the socket and disconnects the plugins.
func (h *Host) Stop() { h.nri.Stop() }

// BlockSync holds off plugin synchronization until the returned func is
// called: a caller holds it from an event's hook until its record change is
// in the stores, so a plugin that connects meanwhile either is synchronized
// after the change or gets the event. The caller must not wait, while
// holding it, for anything that takes it.
func (h *Host) BlockSync() (unblock func()) { return h.nri.BlockPluginSync().Unblock }

// active reports whether any plugin listens; call it with sync blocked.
func (h *Host) active() bool { return h.plugins.Load() > 0 }

// synchronize is the nri library's SyncFn: it hands plugin sync every pod
// and container in the stores. The library calls it with sync blocked for
// others, so no record change with its event is half done.
func (h *Host) synchronize(ctx context.Context, sync adaptation.SyncCB) error {
	var pods []*api.PodSandbox
	for _, p := range h.opts.Pods.List() {
		pods = append(pods, h.podToNRI(ctx, p))
	}
	var ctrs []*api.Container
	for _, c := range h.opts.Containers.List() {
		ctrs = append(ctrs, h.containerToNRI(ctx, c, nil))
	}
	updates, err := sync(ctx, pods, ctrs)
	if err != nil {
		return err
	}
	h.applyLater(updates, nil)
	return nil
}

// updateFromPlugin is the nri library's UpdateFn: a plugin's unsolicited
// container updates. It returns the updates that failed.
func (h *Host) updateFromPlugin(ctx context.Context, updates []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
	return h.apply(ctx, updates), nil
}

// applyLater applies updates and evictions plugins asked for in answer to
// an event, in the background: the caller holds locks and the sync block,
// and the containers they touch take their own locks.
func (h *Host) applyLater(updates []*api.ContainerUpdate, evictions []*api.ContainerEviction) {
	if len(updates) == 0 && len(evictions) == 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		h.apply(ctx, updates)
		h.evict(ctx, evictions)
	}()
}

// apply applies updates and returns those that failed.
func (h *Host) apply(ctx context.Context, updates []*api.ContainerUpdate) []*api.ContainerUpdate {
	u := h.updater.Load()
	var failed []*api.ContainerUpdate
	for _, up := range updates {
		res := up.GetLinux().GetResources()
		if res == nil {
			continue
		}
		err := fmt.Errorf("nri not started")
		if u != nil {
			err = (*u).UpdateResources(ctx, up.GetContainerId(), res.ToOCI())
		}
		if err != nil {
			log.G(ctx).WithError(err).WithField("containerid", up.GetContainerId()).Warn("nri: applying a plugin's container update")
			if !up.GetIgnoreFailure() {
				failed = append(failed, up)
			}
		}
	}
	return failed
}

func (h *Host) evict(ctx context.Context, evictions []*api.ContainerEviction) {
	u := h.updater.Load()
	for _, e := range evictions {
		if u == nil {
			return
		}
		log.G(ctx).WithField("containerid", e.GetContainerId()).WithField("reason", e.GetReason()).Info("nri: a plugin evicts a container")
		if err := (*u).Evict(ctx, e.GetContainerId()); err != nil {
			log.G(ctx).WithError(err).WithField("containerid", e.GetContainerId()).Warn("nri: evicting a container")
		}
	}
}

// pluginCounter is the nri library's Metrics, kept for its plugin count.
type pluginCounter struct{ n *atomic.Int64 }

func (pluginCounter) RecordPluginInvocation(string, string, error)      {}
func (pluginCounter) RecordPluginLatency(string, string, time.Duration) {}
func (pluginCounter) RecordPluginAdjustments(string, string, *api.ContainerAdjustment, int, int) {
}
func (c pluginCounter) UpdatePluginCount(n int) { c.n.Store(int64(n)) }
