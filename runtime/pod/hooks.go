package pod

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Hooks let NRI plugins (package nri's Host) see pods' lifecycle. The
// Runtime calls them at the points the NRI contracts name, and holds
// BlockSync from a hook until the record change it announces is in the
// Store, so a plugin that connects meanwhile is synchronized after the
// change or gets the hook.
type Hooks interface {
	// BlockSync holds off plugin synchronization until unblock is called.
	BlockSync() (unblock func())
	// RunPodSandbox runs once the pod is set up and before it is recorded
	// (not listed yet); an error fails RunPodSandbox, which undoes it all.
	RunPodSandbox(ctx context.Context, p Sandbox) error
	// StopPodSandbox runs with the pod's containers stopped and the pod
	// still listed, on its first stop only.
	StopPodSandbox(ctx context.Context, p Sandbox)
	// RemovePodSandbox runs with the pod's containers removed, before its
	// record is deleted.
	RemovePodSandbox(ctx context.Context, p Sandbox)
	// UpdatePodSandbox runs, with the pod's lock held, when kubelet
	// resizes the pod (overhead and resources may be nil); an error fails
	// the update. PostUpdatePodSandbox runs after it succeeded.
	UpdatePodSandbox(ctx context.Context, p Sandbox, overhead, resources *runtimeapi.LinuxContainerResources) error
	PostUpdatePodSandbox(ctx context.Context, p Sandbox)
}

// noHooks is the Hooks of a Runtime without NRI.
type noHooks struct{}

func (noHooks) BlockSync() func()                            { return func() {} }
func (noHooks) RunPodSandbox(context.Context, Sandbox) error { return nil }
func (noHooks) StopPodSandbox(context.Context, Sandbox)      {}
func (noHooks) RemovePodSandbox(context.Context, Sandbox)    {}
func (noHooks) UpdatePodSandbox(context.Context, Sandbox, *runtimeapi.LinuxContainerResources, *runtimeapi.LinuxContainerResources) error {
	return nil
}
func (noHooks) PostUpdatePodSandbox(context.Context, Sandbox) {}

// hooks is the Runtime's Hooks, never nil.
func (r *Runtime) hooks() Hooks {
	if r.opts.Hooks == nil {
		return noHooks{}
	}
	return r.opts.Hooks
}
