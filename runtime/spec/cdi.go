package spec

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"tags.cncf.io/container-device-interface/pkg/cdi"
	"tags.cncf.io/container-device-interface/pkg/parser"
)

// CDIRegistry resolves fully qualified CDI device names
// (vendor.com/class=name) against the CDI specs of the node and applies
// their container edits to a spec. *cdi.Cache is the implementation.
type CDIRegistry interface {
	// InjectDevices applies the edits of devices to s and returns the
	// names it could not resolve.
	InjectDevices(s *oci.Spec, devices ...string) ([]string, error)
	// GetErrors are the errors of the spec files that could not be loaded,
	// by file.
	GetErrors() map[string][]error
	// GetSpecDirectories are the directories specs are read from.
	GetSpecDirectories() []string
}

var _ CDIRegistry = (*cdi.Cache)(nil)

// NewCDIRegistry returns a CDI cache over dirs (cdi.DefaultSpecDirs when
// empty). It watches the directories (inotify) and reloads only when a
// spec file changes, so resolving a device costs a map lookup.
func NewCDIRegistry(dirs []string) *cdi.Cache {
	if len(dirs) == 0 {
		dirs = cdi.DefaultSpecDirs
	}
	c, _ := cdi.NewCache(cdi.WithSpecDirs(dirs...), cdi.WithAutoRefresh(true))
	return c
}

// CheckCDIDeviceName is nil when name is a fully qualified CDI device name
// (vendor.com/class=name), else an InvalidArgument error naming field.
func CheckCDIDeviceName(field, name string) error {
	if _, _, _, err := parser.ParseQualifiedName(name); err != nil {
		return invalid(field, "%q is not a CDI device name (vendor.com/class=name): %v", name, err)
	}
	return nil
}

// CDIDeviceNames are the CDI devices a container asks for: its
// CDI_devices, then the devices named by cdi.k8s.io/ annotations on its pod
// and on itself (as containerd and CRI-O accept them), each once, in that
// order. A malformed name or annotation is InvalidArgument naming the
// field.
func CDIDeviceNames(podAnnotations map[string]string, c *runtimeapi.ContainerConfig) ([]string, error) {
	var names []string
	add := func(n string) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for i, d := range c.GetCDIDevices() {
		if err := CheckCDIDeviceName(fmt.Sprintf("CDI_devices[%d].name", i), d.GetName()); err != nil {
			return nil, err
		}
		add(d.GetName())
	}
	for _, a := range []struct {
		field string
		m     map[string]string
	}{{"sandbox_config.annotations", podAnnotations}, {"annotations", c.GetAnnotations()}} {
		// Key by key in sorted order: the edits apply in a stable order.
		keys := make([]string, 0, len(a.m))
		for k := range a.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			_, devices, err := cdi.ParseAnnotations(map[string]string{k: a.m[k]})
			if err != nil {
				return nil, invalid(a.field+"["+k+"]", "%v", err)
			}
			for _, d := range devices {
				add(d)
			}
		}
	}
	return names, nil
}

// WithCDIDevices applies the container edits of the named CDI devices
// (device nodes and their cgroup rules, env, mounts, hooks) from reg.
// Duplicate names count once. A name no spec defines is a NotFound error
// naming the device, with the errors of any spec file that failed to
// load (the device may be in it); edits that cannot be applied (a device
// node whose host path is missing) are InvalidArgument. No names is a
// no-op, and reg may then be nil.
func WithCDIDevices(reg CDIRegistry, names []string) oci.SpecOpts {
	var devices []string
	for _, n := range names {
		if !slices.Contains(devices, n) {
			devices = append(devices, n)
		}
	}
	if len(devices) == 0 {
		return nop
	}
	if reg == nil {
		return failed(fmt.Errorf("CDI devices %s: CDI is disabled on this node (cri.enable_cdi): %w", strings.Join(devices, ", "), errdefs.ErrFailedPrecondition))
	}
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		unresolved, err := reg.InjectDevices(s, devices...)
		if len(unresolved) > 0 {
			return fmt.Errorf("CDI device %s: not defined by any spec in %s%s: %w",
				strings.Join(unresolved, ", "), strings.Join(reg.GetSpecDirectories(), ", "), specErrors(reg), errdefs.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("CDI devices %s: %v: %w", strings.Join(devices, ", "), err, errdefs.ErrInvalidArgument)
		}
		return nil
	}
}

// specErrors describes the spec files reg could not load, or is empty.
func specErrors(reg CDIRegistry) string {
	errs := reg.GetErrors()
	if len(errs) == 0 {
		return ""
	}
	files := make([]string, 0, len(errs))
	for f := range errs {
		files = append(files, f)
	}
	sort.Strings(files)
	var b strings.Builder
	b.WriteString(" (specs that failed to load:")
	for _, f := range files {
		for _, e := range errs[f] {
			fmt.Fprintf(&b, " %s: %v;", f, e)
		}
	}
	return strings.TrimSuffix(b.String(), ";") + ")"
}
