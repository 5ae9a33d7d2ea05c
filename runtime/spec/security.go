package spec

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cap"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const capsField = "linux.security_context.capabilities"

// WithCapabilities applies the CRI capability changes to the spec's
// capability sets, in containerd's order: add ALL (all, the capabilities
// this node can grant), drop ALL, add each, drop each. Names are
// case-insensitive, with or without the CAP_ prefix. Added capabilities go
// to the bounding, permitted and effective sets, as containerd does; the
// CRI's comment also lists the inheritable set, which is left out so that
// a binary with inheritable file capabilities gains nothing
// (CVE-2022-24769). add_ambient_capabilities go to all five sets, ambient
// included, which lets a non-root process keep them. Dropping removes from
// every set.
func WithCapabilities(c *runtimeapi.Capability, all []string) oci.SpecOpts {
	return must(capabilitiesOpt(c, all))
}

func capabilitiesOpt(c *runtimeapi.Capability, all []string) (oci.SpecOpts, error) {
	if c == nil {
		return nop, nil
	}
	add, addAll, err := capNames(capsField+".add_capabilities", c.GetAddCapabilities(), true, all)
	if err != nil {
		return nil, err
	}
	drop, dropAll, err := capNames(capsField+".drop_capabilities", c.GetDropCapabilities(), true, nil)
	if err != nil {
		return nil, err
	}
	ambient, _, err := capNames(capsField+".add_ambient_capabilities", c.GetAddAmbientCapabilities(), false, all)
	if err != nil {
		return nil, err
	}
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		if s.Process.Capabilities == nil {
			s.Process.Capabilities = &specs.LinuxCapabilities{}
		}
		cs := s.Process.Capabilities
		main := []*[]string{&cs.Bounding, &cs.Effective, &cs.Permitted}
		every := []*[]string{&cs.Bounding, &cs.Effective, &cs.Permitted, &cs.Inheritable, &cs.Ambient}
		if addAll {
			for _, set := range main {
				*set = slices.Clone(all)
			}
		}
		if dropAll {
			for _, set := range every {
				*set = nil
			}
		}
		addCaps(main, add)
		for _, set := range every {
			*set = slices.DeleteFunc(*set, func(c string) bool { return slices.Contains(drop, c) })
		}
		addCaps(every, ambient)
		return nil
	}, nil
}

func addCaps(sets []*[]string, caps []string) {
	for _, set := range sets {
		for _, c := range caps {
			if !slices.Contains(*set, c) {
				*set = append(*set, c)
			}
		}
	}
}

// capNames normalizes CRI capability names to CAP_X. "ALL" is reported
// apart when allowed. A capability outside available (when given) is an
// error: runc cannot grant what this node's runtime does not hold.
func capNames(field string, names []string, allowAll bool, available []string) (caps []string, all bool, err error) {
	known := cap.Known()
	for i, n := range names {
		u := strings.ToUpper(strings.TrimSpace(n))
		if u == "ALL" && allowAll {
			all = true
			continue
		}
		if !strings.HasPrefix(u, "CAP_") {
			u = "CAP_" + u
		}
		f := fmt.Sprintf("%s[%d]", field, i)
		if !slices.Contains(known, u) {
			return nil, false, invalid(f, "unknown capability %q", n)
		}
		if available != nil && !slices.Contains(available, u) {
			return nil, false, invalid(f, "%s is not in this node's capability bounding set, so no container can have it", u)
		}
		caps = append(caps, u)
	}
	return caps, all, nil
}

// withPrivileged makes a privileged container: every capability in all,
// no masked or read-only paths, writable sysfs and cgroupfs, no AppArmor
// or seccomp, and every host device, all allowed in the device cgroup.
func withPrivileged(all []string) oci.SpecOpts {
	return oci.Compose(
		oci.WithCapabilities(slices.Clone(all)),
		oci.WithMaskedPaths(nil),
		oci.WithReadonlyPaths(nil),
		oci.WithWriteableSysfs,
		oci.WithWriteableCgroupfs,
		oci.WithApparmorProfile(""),
		oci.WithSeccompUnconfined,
		oci.WithHostDevices,
		oci.WithAllDevicesAllowed,
	)
}

// WithPrivileged is what privileged: true means for a container; see
// withPrivileged. It takes the capabilities from DetectHost.
func WithPrivileged(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
	return withPrivileged(DetectHost().Capabilities)(ctx, client, c, s)
}

// WithMaskedPaths sets the masked and read-only paths the security
// context gives. A list it leaves empty keeps the spec's (containerd's
// defaults: /proc/kcore, /sys/firmware, ...; read-only /proc/sys, ...):
// proto3 cannot tell an empty list from an absent one, and kubelet sends
// its defaults for ProcMountType Default; only Unmasked sends none, which
// needs a pod user namespace that slipway does not have. containerd's CRI
// clears the defaults instead, leaving a crictl-made container unmasked.
// Privileged containers get none either way (withPrivileged).
func WithMaskedPaths(sc *runtimeapi.LinuxContainerSecurityContext) oci.SpecOpts {
	masked, readonly := sc.GetMaskedPaths(), sc.GetReadonlyPaths()
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if len(masked) > 0 {
			s.Linux.MaskedPaths = slices.Clone(masked)
		}
		if len(readonly) > 0 {
			s.Linux.ReadonlyPaths = slices.Clone(readonly)
		}
		return nil
	}
}

// WithNoNewPrivileges sets the process's no_new_privs flag to v.
func WithNoNewPrivileges(v bool) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		s.Process.NoNewPrivileges = v
		return nil
	}
}

// WithReadonlyRootfs makes the rootfs read-only when v. The snapshot stays
// writable, so runc can still create mount points before remounting it.
func WithReadonlyRootfs(v bool) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Root == nil {
			s.Root = &specs.Root{}
		}
		s.Root.Readonly = v
		return nil
	}
}

// WithDevices adds the CRI devices: each host path (symlinks resolved; a
// directory adds every device under it) appears at its container path
// (the host path when empty), allowed in the device cgroup with its
// permissions, a combination of r, w and m (all three when empty).
func WithDevices(devices []*runtimeapi.Device) oci.SpecOpts {
	return must(devicesOpt(devices))
}

func devicesOpt(devices []*runtimeapi.Device) (oci.SpecOpts, error) {
	type device struct{ host, container, perms string }
	var ds []device
	for i, d := range devices {
		field := func(name string) string { return fmt.Sprintf("devices[%d].%s", i, name) }
		if d.GetHostPath() == "" {
			return nil, invalid(field("host_path"), "is required")
		}
		if err := checkAbsPath(field("host_path"), d.GetHostPath()); err != nil {
			return nil, err
		}
		cp := d.GetContainerPath()
		if cp == "" {
			cp = d.GetHostPath()
		}
		if err := checkAbsPath(field("container_path"), cp); err != nil {
			return nil, err
		}
		perms := d.GetPermissions()
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" || len(perms) > 3 {
			return nil, invalid(field("permissions"), "%q is not a combination of r, w and m", d.GetPermissions())
		}
		ds = append(ds, device{d.GetHostPath(), cp, perms})
	}
	if len(ds) == 0 {
		return nop, nil
	}
	return func(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		for i, d := range ds {
			host, err := filepath.EvalSymlinks(d.host)
			if err != nil {
				return invalid(fmt.Sprintf("devices[%d].host_path", i), "%v", err)
			}
			if err := oci.WithDevices(host, d.container, d.perms)(ctx, client, c, s); err != nil {
				return invalid(fmt.Sprintf("devices[%d].host_path", i), "%v", err)
			}
		}
		return nil
	}, nil
}
