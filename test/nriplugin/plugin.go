// Package nriplugin is an NRI plugin for slipway's end-to-end specs: it
// adds an environment variable and a mount to every container it is asked
// about, and records every event and synchronization it gets, in order.
// Run keeps it connected: when the runtime goes away (a slipwayd restart)
// it dials again until its context ends.
package nriplugin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
)

// Event is one lifecycle event the plugin got.
type Event struct {
	// Name is NRI's name of the event, "RunPodSandbox", "CreateContainer", ...
	Name  string
	PodID string
	// ContainerID is empty for pod events.
	ContainerID string
}

// Sync is one Synchronize the plugin got: the IDs of what the runtime had.
type Sync struct {
	PodIDs, ContainerIDs []string
}

// Plugin adjusts containers and records what the runtime tells it.
type Plugin struct {
	// EnvKey=EnvValue is added to every container's environment.
	EnvKey, EnvValue string
	// Mount is added to every container, when not nil.
	Mount *api.Mount

	mu sync.Mutex
	// events and syncs are what the plugin got, in order; mu guards them.
	events []Event
	syncs  []Sync
}

// Run connects p to the runtime's NRI socket as plugin idx-name and keeps
// it connected, dialling again every retry while the socket does not
// answer, until ctx ends.
func (p *Plugin) Run(ctx context.Context, socket, name, idx string, retry time.Duration) error {
	for {
		s, err := stub.New(p, stub.WithSocketPath(socket), stub.WithPluginName(name), stub.WithPluginIdx(idx),
			stub.WithOnClose(func() {}))
		if err != nil {
			return fmt.Errorf("nri stub: %w", err)
		}
		err = s.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(retry):
			}
		}
	}
}

// Events returns the events so far, in order.
func (p *Plugin) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// Syncs returns the synchronizations so far, in order.
func (p *Plugin) Syncs() []Sync {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.syncs)
}

func (p *Plugin) record(name string, pod *api.PodSandbox, c *api.Container) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, Event{Name: name, PodID: pod.GetId(), ContainerID: c.GetId()})
}

// Synchronize records what the runtime has.
func (p *Plugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	var s Sync
	for _, pod := range pods {
		s.PodIDs = append(s.PodIDs, pod.GetId())
	}
	for _, c := range ctrs {
		s.ContainerIDs = append(s.ContainerIDs, c.GetId())
	}
	p.mu.Lock()
	p.syncs = append(p.syncs, s)
	p.mu.Unlock()
	return nil, nil
}

func (p *Plugin) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RunPodSandbox", pod, nil)
	return nil
}

func (p *Plugin) UpdatePodSandbox(_ context.Context, pod *api.PodSandbox, _, _ *api.LinuxResources) error {
	p.record("UpdatePodSandbox", pod, nil)
	return nil
}

func (p *Plugin) PostUpdatePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("PostUpdatePodSandbox", pod, nil)
	return nil
}

func (p *Plugin) StopPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("StopPodSandbox", pod, nil)
	return nil
}

func (p *Plugin) RemovePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RemovePodSandbox", pod, nil)
	return nil
}

// CreateContainer records the event and adjusts the container.
func (p *Plugin) CreateContainer(_ context.Context, pod *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	p.record("CreateContainer", pod, c)
	a := &api.ContainerAdjustment{}
	if p.EnvKey != "" {
		a.AddEnv(p.EnvKey, p.EnvValue)
	}
	if p.Mount != nil {
		a.AddMount(p.Mount)
	}
	return a, nil, nil
}

func (p *Plugin) PostCreateContainer(_ context.Context, pod *api.PodSandbox, c *api.Container) error {
	p.record("PostCreateContainer", pod, c)
	return nil
}

func (p *Plugin) StartContainer(_ context.Context, pod *api.PodSandbox, c *api.Container) error {
	p.record("StartContainer", pod, c)
	return nil
}

func (p *Plugin) PostStartContainer(_ context.Context, pod *api.PodSandbox, c *api.Container) error {
	p.record("PostStartContainer", pod, c)
	return nil
}

func (p *Plugin) UpdateContainer(_ context.Context, pod *api.PodSandbox, c *api.Container, _ *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	p.record("UpdateContainer", pod, c)
	return nil, nil
}

func (p *Plugin) PostUpdateContainer(_ context.Context, pod *api.PodSandbox, c *api.Container) error {
	p.record("PostUpdateContainer", pod, c)
	return nil
}

func (p *Plugin) StopContainer(_ context.Context, pod *api.PodSandbox, c *api.Container) ([]*api.ContainerUpdate, error) {
	p.record("StopContainer", pod, c)
	return nil, nil
}

func (p *Plugin) RemoveContainer(_ context.Context, pod *api.PodSandbox, c *api.Container) error {
	p.record("RemoveContainer", pod, c)
	return nil
}
