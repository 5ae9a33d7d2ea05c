package nri

import (
	"fmt"
	"slices"
	"strings"

	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// specEditor edits an OCI spec in place for the nri library's adjustment
// generator (nrigen.UnderlyingGenerator), without runtime-tools' generate
// package and its validation dependencies. The spec is never nil.
type specEditor struct{ s *specs.Spec }

var _ nrigen.UnderlyingGenerator = specEditor{}

func (e specEditor) Spec() *specs.Spec { return e.s }

func (e specEditor) process() *specs.Process {
	if e.s.Process == nil {
		e.s.Process = &specs.Process{}
	}
	return e.s.Process
}

func (e specEditor) linux() *specs.Linux {
	if e.s.Linux == nil {
		e.s.Linux = &specs.Linux{}
	}
	return e.s.Linux
}

func (e specEditor) resources() *specs.LinuxResources {
	l := e.linux()
	if l.Resources == nil {
		l.Resources = &specs.LinuxResources{}
	}
	return l.Resources
}

func (e specEditor) cpu() *specs.LinuxCPU {
	r := e.resources()
	if r.CPU == nil {
		r.CPU = &specs.LinuxCPU{}
	}
	return r.CPU
}

func (e specEditor) memory() *specs.LinuxMemory {
	r := e.resources()
	if r.Memory == nil {
		r.Memory = &specs.LinuxMemory{}
	}
	return r.Memory
}

func (e specEditor) hooks() *specs.Hooks {
	if e.s.Hooks == nil {
		e.s.Hooks = &specs.Hooks{}
	}
	return e.s.Hooks
}

func (e specEditor) AddAnnotation(key, value string) {
	if e.s.Annotations == nil {
		e.s.Annotations = map[string]string{}
	}
	e.s.Annotations[key] = value
}

func (e specEditor) RemoveAnnotation(key string) { delete(e.s.Annotations, key) }

// AddDevice adds device, replacing one at the same path.
func (e specEditor) AddDevice(device specs.LinuxDevice) {
	l := e.linux()
	if i := slices.IndexFunc(l.Devices, func(d specs.LinuxDevice) bool { return d.Path == device.Path }); i >= 0 {
		l.Devices[i] = device
		return
	}
	l.Devices = append(l.Devices, device)
}

func (e specEditor) RemoveDevice(path string) {
	if e.s.Linux == nil {
		return
	}
	e.s.Linux.Devices = slices.DeleteFunc(e.s.Linux.Devices, func(d specs.LinuxDevice) bool { return d.Path == path })
}

// namespaceTypes maps NRI's namespace names to OCI's.
var namespaceTypes = map[string]specs.LinuxNamespaceType{
	"network": specs.NetworkNamespace, "net": specs.NetworkNamespace,
	"pid": specs.PIDNamespace, "mount": specs.MountNamespace, "mnt": specs.MountNamespace,
	"ipc": specs.IPCNamespace, "uts": specs.UTSNamespace, "user": specs.UserNamespace,
	"cgroup": specs.CgroupNamespace, "time": specs.TimeNamespace,
}

func namespaceType(name string) (specs.LinuxNamespaceType, error) {
	if t, ok := namespaceTypes[name]; ok {
		return t, nil
	}
	return "", fmt.Errorf("unknown namespace %q", name)
}

func (e specEditor) AddOrReplaceLinuxNamespace(name, path string) error {
	t, err := namespaceType(name)
	if err != nil {
		return err
	}
	l := e.linux()
	if i := slices.IndexFunc(l.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t }); i >= 0 {
		l.Namespaces[i].Path = path
		return nil
	}
	l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
	return nil
}

func (e specEditor) RemoveLinuxNamespace(name string) error {
	t, err := namespaceType(name)
	if err != nil {
		return err
	}
	if e.s.Linux != nil {
		e.s.Linux.Namespaces = slices.DeleteFunc(e.s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
	}
	return nil
}

func (e specEditor) AddPreStartHook(h specs.Hook) {
	hooks := e.hooks()
	hooks.Prestart = append(hooks.Prestart, h) //nolint:staticcheck // NRI still adjusts the deprecated prestart hooks
}

func (e specEditor) AddPostStartHook(h specs.Hook) {
	hooks := e.hooks()
	hooks.Poststart = append(hooks.Poststart, h)
}

func (e specEditor) AddPostStopHook(h specs.Hook) {
	hooks := e.hooks()
	hooks.Poststop = append(hooks.Poststop, h)
}

// AddProcessEnv sets name to value, in place when name is set already.
func (e specEditor) AddProcessEnv(name, value string) {
	if name == "" {
		return
	}
	p := e.process()
	kv := name + "=" + value
	if i := slices.IndexFunc(p.Env, func(v string) bool { return strings.HasPrefix(v, name+"=") }); i >= 0 {
		p.Env[i] = kv
		return
	}
	p.Env = append(p.Env, kv)
}

func (e specEditor) ClearProcessEnv() {
	if e.s.Process != nil {
		e.s.Process.Env = []string{}
	}
}

func (e specEditor) AddLinuxResourcesDevice(allow bool, devType string, major, minor *int64, access string) {
	r := e.resources()
	r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{Allow: allow, Type: devType, Major: major, Minor: minor, Access: access})
}

func (e specEditor) AddLinuxResourcesHugepageLimit(pageSize string, limit uint64) {
	r := e.resources()
	if i := slices.IndexFunc(r.HugepageLimits, func(h specs.LinuxHugepageLimit) bool { return h.Pagesize == pageSize }); i >= 0 {
		r.HugepageLimits[i].Limit = limit
		return
	}
	r.HugepageLimits = append(r.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: pageSize, Limit: limit})
}

func (e specEditor) AddLinuxResourcesUnified(key, val string) {
	r := e.resources()
	if r.Unified == nil {
		r.Unified = map[string]string{}
	}
	r.Unified[key] = val
}

func (e specEditor) AddMount(m specs.Mount) { e.s.Mounts = append(e.s.Mounts, m) }

func (e specEditor) AddLinuxSysctl(key, value string) {
	l := e.linux()
	if l.Sysctl == nil {
		l.Sysctl = map[string]string{}
	}
	l.Sysctl[key] = value
}

func (e specEditor) ClearMounts() { e.s.Mounts = []specs.Mount{} }

func (e specEditor) Mounts() []specs.Mount { return e.s.Mounts }

// RemoveMount removes the mount at dest.
func (e specEditor) RemoveMount(dest string) {
	e.s.Mounts = slices.DeleteFunc(e.s.Mounts, func(m specs.Mount) bool { return m.Destination == dest })
}

func (e specEditor) RemoveLinuxSysctl(key string) {
	if e.s.Linux != nil {
		delete(e.s.Linux.Sysctl, key)
	}
}

func (e specEditor) SetProcessArgs(args []string) { e.process().Args = args }

func (e specEditor) SetLinuxCgroupsPath(path string) { e.linux().CgroupsPath = path }

func (e specEditor) SetLinuxResourcesCPUCpus(cpus string) { e.cpu().Cpus = cpus }

func (e specEditor) SetLinuxResourcesCPUMems(mems string) { e.cpu().Mems = mems }

func (e specEditor) SetLinuxResourcesCPUPeriod(period uint64) { e.cpu().Period = &period }

func (e specEditor) SetLinuxResourcesCPUQuota(quota int64) { e.cpu().Quota = &quota }

func (e specEditor) SetLinuxResourcesCPURealtimePeriod(period uint64) {
	e.cpu().RealtimePeriod = &period
}

func (e specEditor) SetLinuxResourcesCPURealtimeRuntime(runtime int64) {
	e.cpu().RealtimeRuntime = &runtime
}

func (e specEditor) SetLinuxResourcesCPUShares(shares uint64) { e.cpu().Shares = &shares }

func (e specEditor) SetLinuxResourcesMemoryLimit(limit int64) { e.memory().Limit = &limit }

func (e specEditor) SetLinuxResourcesMemorySwap(swap int64) { e.memory().Swap = &swap }

// SetLinuxRootPropagation sets the rootfs propagation, one of OCI's modes.
func (e specEditor) SetLinuxRootPropagation(mode string) error {
	switch mode {
	case "", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable":
		e.linux().RootfsPropagation = mode
		return nil
	}
	return fmt.Errorf("unknown rootfs propagation %q", mode)
}

func (e specEditor) SetProcessOOMScoreAdj(adj int) { e.process().OOMScoreAdj = &adj }
