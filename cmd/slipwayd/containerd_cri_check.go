package main

import (
	"context"
	"fmt"

	introspectionapi "github.com/containerd/containerd/api/services/introspection/v1"
	"github.com/containerd/errdefs"
)

// containerdCRINamespace is the namespace containerd's own CRI keeps pods in.
const containerdCRINamespace = "k8s.io"

// pluginLister is the part of containerd's introspection service the check
// needs.
type pluginLister interface {
	Plugins(ctx context.Context, filters ...string) (*introspectionapi.PluginsResponse, error)
}

// checkNoContainerdCRI refuses a containerd (given with containerd.address)
// whose own CRI plugin is loaded while slipway keeps its records in the
// namespace that CRI owns: at every start, containerd's CRI deletes the
// sandbox records there that it did not write, and those are slipway's
// pods and exit guards. Fails with FailedPrecondition, saying what to do.
func checkNoContainerdCRI(ctx context.Context, plugins pluginLister, address, namespace string) error {
	if namespace != containerdCRINamespace {
		return nil
	}
	resp, err := plugins.Plugins(ctx, "type==io.containerd.grpc.v1,id==cri")
	if err != nil {
		return fmt.Errorf("listing the plugins of containerd at %s: %w", address, err)
	}
	for _, p := range resp.GetPlugins() {
		if p.GetInitErr() == nil {
			return fmt.Errorf("containerd at %s runs its own CRI plugin (io.containerd.grpc.v1.cri), which deletes at each start "+
				"the pod records in namespace %s that it did not make, slipway's among them: disable its CRI plugins "+
				"(see the README, \"Use slipway as your node's runtime\"), give slipway another cri.namespace, "+
				"or leave containerd.address empty for slipway's own containerd: %w",
				address, namespace, errdefs.ErrFailedPrecondition)
		}
	}
	return nil
}
