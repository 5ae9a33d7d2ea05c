// Package builder embeds BuildKit in slipwayd: a BuildKit controller with a
// containerd worker on slipwayd's containerd, in the namespace and with the
// snapshotter the CRI uses, so a built image is ready for a pod at once. It
// serves BuildKit's own control API, so buildctl and buildx (remote driver)
// work against it unchanged.
//
// The Dockerfile frontend (dockerfile.v0) is compiled in and gateway.v0 is
// available; build cache is kept under Options.Root and pruned by a GC
// policy; registry, local and inline cache import and export are wired; and
// registries are reached through the same hosts directory as CRI pulls.
package builder

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/slipway-dev/slipway/runtime/metrics"
)

// Options configure a Builder. Address, Namespace and Root are required.
type Options struct {
	// Address is containerd's gRPC socket.
	Address string
	// Namespace is the containerd namespace of the worker: the CRI's, so
	// built images are the node's images.
	Namespace string
	// Snapshotter prepares build steps and unpacks built images; empty
	// means "overlayfs". It must be the CRI's so pods can run the images.
	Snapshotter string
	// Root holds BuildKit's persistent state: cache metadata, build history,
	// cache mounts. Only one Builder may use a Root at a time.
	Root string
	// HostsDir is a containerd-style hosts directory (HOST/hosts.toml) used
	// for every registry access: FROM pulls, pushes, cache import and export.
	// Empty means registries are reached directly over https.
	HostsDir string
	// GC is the build cache garbage collection policy.
	GC GCOptions
	// MaxParallelism bounds the build steps that run at once; 0 means no bound.
	MaxParallelism int
	// Entitlements are the insecure entitlements builds may ask for:
	// "network.host", "security.insecure". None by default.
	Entitlements []string
	// ContainerdOpts are extra options for the worker's containerd client.
	ContainerdOpts []containerd.Opt
	// Metrics records finished builds: count, duration, steps and cache
	// hits; nil records nothing.
	Metrics *metrics.Metrics
}

// allowedEntitlements are the values Options.Entitlements accepts.
var allowedEntitlements = map[string]bool{"network.host": true, "security.insecure": true}

// withDefaults returns o with empty fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.Snapshotter == "" {
		o.Snapshotter = "overlayfs"
	}
	return o
}

// validate names the first option that cannot work.
func (o Options) validate() error {
	if o.Address == "" {
		return errors.New("builder: containerd address must not be empty")
	}
	if o.Namespace == "" {
		return errors.New("builder: namespace must not be empty")
	}
	if !filepath.IsAbs(o.Root) {
		return fmt.Errorf("builder: root must be an absolute path, got %q", o.Root)
	}
	if strings.Contains(o.Snapshotter, "/") {
		return fmt.Errorf("builder: snapshotter name %q must not contain '/'", o.Snapshotter)
	}
	if o.MaxParallelism < 0 {
		return fmt.Errorf("builder: max parallelism must not be negative, got %d", o.MaxParallelism)
	}
	for _, e := range o.Entitlements {
		if !allowedEntitlements[e] {
			return fmt.Errorf("builder: unknown entitlement %q (allowed: network.host, security.insecure)", e)
		}
	}
	return o.GC.validate()
}
