package container

import (
	"context"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// HookEvent is a container lifecycle event Hooks.Notify tells of.
type HookEvent int

// The events Notify tells of.
const (
	// PostCreate: the container is created and listed.
	PostCreate HookEvent = iota + 1
	// PostStart: the container's task runs and is recorded so.
	PostStart
	// PostUpdate: new resources are applied.
	PostUpdate
	// Stopped: the container's exit is recorded (a stop, a kill or an exit
	// on its own), or a container that never ran is about to be removed,
	// or a failed creation is undone. Told once per container.
	Stopped
	// Removed: the container is removed, or a failed creation is undone.
	Removed
)

func (e HookEvent) String() string {
	switch e {
	case PostCreate:
		return "PostCreateContainer"
	case PostStart:
		return "PostStartContainer"
	case PostUpdate:
		return "PostUpdateContainer"
	case Stopped:
		return "StopContainer"
	case Removed:
		return "RemoveContainer"
	}
	return "unknown"
}

// Hooks let NRI plugins (package nri's Host) see and adjust containers.
// The Runtime calls them with the container's lock held (the pod's too for
// CreateContainer), and holds BlockSync from a hook until the record
// change it announces is in the Store, so a plugin that connects meanwhile
// is synchronized after the change or gets the hook.
type Hooks interface {
	// BlockSync holds off plugin synchronization until unblock is called.
	BlockSync() (unblock func())
	// CreateContainer may adjust the spec of container c, which is not
	// listed yet; an error fails the creation.
	CreateContainer(ctx context.Context, c Container, s *specs.Spec) error
	// StartContainer runs before c's task starts; an error fails the start.
	StartContainer(ctx context.Context, c Container) error
	// UpdateContainer returns the resources to apply to c instead of res.
	UpdateContainer(ctx context.Context, c Container, res *specs.LinuxResources) (*specs.LinuxResources, error)
	// Notify tells of an event; it cannot fail the event.
	Notify(ctx context.Context, e HookEvent, c Container)
}

// noHooks is the Hooks of a Runtime without NRI.
type noHooks struct{}

func (noHooks) BlockSync() func()                                             { return func() {} }
func (noHooks) CreateContainer(context.Context, Container, *specs.Spec) error { return nil }
func (noHooks) StartContainer(context.Context, Container) error               { return nil }
func (noHooks) UpdateContainer(_ context.Context, _ Container, res *specs.LinuxResources) (*specs.LinuxResources, error) {
	return res, nil
}
func (noHooks) Notify(context.Context, HookEvent, Container) {}

// hooks is the Runtime's Hooks, never nil.
func (r *Runtime) hooks() Hooks {
	if r.opts.Hooks == nil {
		return noHooks{}
	}
	return r.opts.Hooks
}
