package builder

import (
	"context"
	"fmt"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/moby/buildkit/client"
	dockerfileversion "github.com/moby/buildkit/frontend/dockerfile/version"
	"github.com/moby/buildkit/util/disk"
	"github.com/moby/buildkit/util/network/cniprovider"
	"github.com/moby/buildkit/util/network/netproviders"
	"github.com/moby/buildkit/version"
	"github.com/moby/buildkit/worker"
	"github.com/moby/buildkit/worker/base"
	ctdworker "github.com/moby/buildkit/worker/containerd"
	"golang.org/x/sync/semaphore"
)

// containerdTimeout bounds the worker's containerd client calls that have
// no deadline of their own, as standalone buildkitd does.
const containerdTimeout = 60 * time.Second

// newWorker builds the containerd worker: build steps run as containerd
// containers (runc v2 shim) in o.Namespace, their file systems are
// o.Snapshotter snapshots, and build steps use the host network (as
// standalone BuildKit does when no CNI config is set up for it).
func newWorker(ctx context.Context, o Options) (worker.Worker, error) {
	var sem *semaphore.Weighted
	if o.MaxParallelism > 0 {
		sem = semaphore.NewWeighted(int64(o.MaxParallelism))
	}
	opt, err := ctdworker.NewWorkerOpt(ctdworker.WorkerOptions{
		Root:            o.Root,
		Address:         o.Address,
		SnapshotterName: o.Snapshotter,
		Namespace:       o.Namespace,
		NetworkOpt: netproviders.Opt{
			Mode: "host",
			// Root is where BuildKit keeps network namespaces of its own.
			CNI: cniprovider.Opt{Root: o.Root},
		},
		ParallelismSem: sem,
		Runtime:        &ctdworker.RuntimeInfo{Name: plugins.RuntimeRuncV2},
	}, append([]containerd.Opt{containerd.WithTimeout(containerdTimeout)}, o.ContainerdOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("containerd worker on %s: %w", o.Address, err)
	}
	dstat, err := disk.GetDiskStat(o.Root)
	if err != nil {
		return nil, fmt.Errorf("builder root %s: %w", o.Root, err)
	}
	if opt.GCPolicy, err = o.GC.policy(dstat); err != nil {
		return nil, err
	}
	opt.BuildkitVersion = client.BuildkitVersion{
		Package:           version.Package,
		Version:           version.Version,
		Revision:          version.Revision,
		DockerfileVersion: dockerfileversion.Version(),
	}
	opt.RegistryHosts = registryHosts(o.HostsDir)
	w, err := base.NewWorker(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("containerd worker: %w", err)
	}
	client, err := containerd.New(o.Address, append([]containerd.Opt{
		containerd.WithDefaultNamespace(o.Namespace), containerd.WithTimeout(containerdTimeout),
	}, o.ContainerdOpts...)...)
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("containerd client on %s: %w", o.Address, err)
	}
	return nodeWorker{Worker: w, records: opt.ImageStore, unpacks: newBackgroundUnpacks(client, o.Snapshotter)}, nil
}
