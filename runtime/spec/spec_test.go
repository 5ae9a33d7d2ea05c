package spec

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/cap"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// testHost is a cgroup v1 node like the test machine, without
// CAP_SYS_RESOURCE.
func testHost() Host {
	return Host{SwapAccounting: true, RecursiveReadOnly: true, Capabilities: without(cap.Known(), "CAP_SYS_RESOURCE")}
}

// testRootfs makes an image root with /etc/passwd and /etc/group.
func testRootfs(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup})
	return root
}

// testPodFiles makes a pod with its files (resolv.conf, hostname, shm)
// and pinned namespaces at made-up paths.
func testPodFiles(t testing.TB, pidMode runtimeapi.NamespaceMode) pod.Sandbox {
	t.Helper()
	p := testPod(pidMode)
	p.Dir = t.TempDir()
	p.ShmPath = t.TempDir()
	writeFiles(t, p.Dir, map[string]string{pod.ResolvConfFile: "nameserver 127.0.0.53\n", pod.HostnameFile: "web\n"})
	p.Config.Linux.CgroupParent = "/kubepods/besteffort/poduid1"
	return p
}

// critestInput is a container like critest's and kubelet's: a command,
// env, a volume, a non-root user with groups, dropped and added
// capabilities, RuntimeDefault seccomp and resources.
func critestInput(t testing.TB) Input {
	t.Helper()
	vol := t.TempDir()
	writeFiles(t, vol, map[string]string{"hello": "from the host\n"})
	return Input{
		ID:  "c1",
		Pod: testPodFiles(t, runtimeapi.NamespaceMode_POD), InfraPID: 4242,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Image:    &runtimeapi.ImageSpec{Image: "busybox:1"},
			Command:  []string{"sh", "-c"},
			Args:     []string{"id; grep CapEff /proc/self/status"},
			Envs:     []*runtimeapi.KeyValue{{Key: "GREETING", Value: []byte("hi")}},
			Mounts:   []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: vol, Readonly: true}},
			Linux: &runtimeapi.LinuxContainerConfig{
				Resources: &runtimeapi.LinuxContainerResources{
					CpuShares: 256, CpuQuota: 50000, CpuPeriod: 100000, MemoryLimitInBytes: 64 << 20, OomScoreAdj: 1000,
					HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB"}},
				},
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					RunAsUser:          &runtimeapi.Int64Value{Value: 1000},
					SupplementalGroups: []int64{1234},
					Capabilities: &runtimeapi.Capability{
						DropCapabilities: []string{"ALL"}, AddAmbientCapabilities: []string{"NET_BIND_SERVICE"},
					},
					Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
					NoNewPrivs:       true,
					ReadonlyRootfs:   true,
					NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD},
				},
			},
		},
		Image: ocispec.Image{Config: ocispec.ImageConfig{
			Entrypoint: []string{"/bin/entry"}, Env: []string{"PATH=/bin:/usr/bin", "IMAGE=1"}, WorkingDir: "/home/app",
		}},
		RootfsMounts: []mount.Mount{{Type: "bind", Source: testRootfs(t), Options: []string{"rbind", "ro"}}},
		CgroupDriver: "cgroupfs",
	}
}

func buildSpec(t *testing.T, in Input, h Host) (*oci.Spec, error) {
	t.Helper()
	opts, err := buildOpts(in, h)
	if err != nil {
		return nil, err
	}
	s := newSpec(t)
	return s, apply(s, opts...)
}

func TestOptsCritestLike(t *testing.T) {
	in := critestInput(t)
	s, err := buildSpec(t, in, testHost())
	if err != nil {
		t.Fatal(err)
	}
	p := s.Process
	if want := []string{"sh", "-c", "id; grep CapEff /proc/self/status"}; !slices.Equal(p.Args, want) {
		t.Errorf("args %q, want %q", p.Args, want)
	}
	if want := []string{"PATH=/bin:/usr/bin", "HOSTNAME=web", "IMAGE=1", "GREETING=hi"}; !slices.Equal(p.Env, want) {
		t.Errorf("env %q, want %q", p.Env, want)
	}
	if p.Cwd != "/home/app" || p.Terminal {
		t.Errorf("cwd %q terminal %v", p.Cwd, p.Terminal)
	}
	if u := p.User; u.UID != 1000 || u.GID != 1000 || !slices.Equal(u.AdditionalGids, []uint32{10, 1000, 1234, 50000}) {
		t.Errorf("user %+v", u)
	}
	bind := []string{"CAP_NET_BIND_SERVICE"}
	if c := p.Capabilities; !slices.Equal(c.Bounding, bind) || !slices.Equal(c.Effective, bind) || !slices.Equal(c.Ambient, bind) || !slices.Equal(c.Inheritable, bind) {
		t.Errorf("capabilities %+v", c)
	}
	if !p.NoNewPrivileges || !s.Root.Readonly || p.Rlimits != nil {
		t.Errorf("no_new_privs %v readonly rootfs %v rlimits %v", p.NoNewPrivileges, s.Root.Readonly, p.Rlimits)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Error("no default seccomp profile")
	}
	if p.OOMScoreAdj == nil || *p.OOMScoreAdj != 1000 {
		t.Errorf("oom_score_adj %v", p.OOMScoreAdj)
	}
	if s.Linux.CgroupsPath != "/kubepods/besteffort/poduid1/c1" {
		t.Errorf("cgroups path %q", s.Linux.CgroupsPath)
	}
	r := s.Linux.Resources
	if *r.CPU.Shares != 256 || *r.CPU.Quota != 50000 || *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 64<<20 || r.HugepageLimits != nil {
		t.Errorf("resources %+v %+v %+v", r.CPU, r.Memory, r.HugepageLimits)
	}
	ns := map[specs.LinuxNamespaceType]string{}
	for _, n := range s.Linux.Namespaces {
		ns[n.Type] = n.Path
	}
	if ns[specs.PIDNamespace] != "/proc/4242/ns/pid" || ns[specs.NetworkNamespace] != "/run/ns/net" || len(ns) != 5 {
		t.Errorf("namespaces %v", ns)
	}
	mounts := map[string]specs.Mount{}
	for _, m := range s.Mounts {
		mounts[m.Destination] = m
	}
	for dst, src := range map[string]string{
		"/etc/resolv.conf": filepath.Join(in.Pod.Dir, "resolv.conf"), "/etc/hostname": filepath.Join(in.Pod.Dir, "hostname"),
		"/dev/shm": in.Pod.ShmPath, "/data": in.Config.Mounts[0].HostPath,
	} {
		m, ok := mounts[dst]
		if !ok || m.Source != src || m.Type != "bind" {
			t.Errorf("mount %s: %+v, want a bind of %s", dst, m, src)
		}
		ro := slices.Contains(m.Options, "ro")
		if ro != (dst != "/dev/shm") {
			t.Errorf("mount %s options %v", dst, m.Options)
		}
	}
	if _, ok := mounts["/run"]; ok {
		t.Error("/run tmpfs kept")
	}
	if _, ok := mounts["/sys/fs/cgroup"]; !ok {
		t.Error("no cgroup mount")
	}
	if s.Annotations[pod.SandboxIDAnnotation] != in.Pod.ID || s.Annotations[ContainerNameAnnotation] != "app" {
		t.Errorf("annotations %v", s.Annotations)
	}
	if len(s.Linux.MaskedPaths) == 0 || len(s.Linux.ReadonlyPaths) == 0 {
		t.Error("default masked and read-only paths lost")
	}
}

func TestOptsPrivileged(t *testing.T) {
	in := critestInput(t)
	in.Pod.Config.Linux.SecurityContext.Privileged = true
	in.Config.Linux.SecurityContext.Privileged = true
	in.Config.Linux.SecurityContext.Capabilities = nil
	h := testHost()
	h.CgroupV2 = true
	in.Config.Linux.Resources.HugepageLimits = nil
	s, err := buildSpec(t, in, h)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Process.Capabilities.Effective, h.Capabilities) || s.Linux.Seccomp != nil || s.Linux.MaskedPaths != nil {
		t.Errorf("privileged: caps %v seccomp %v masked %v", s.Process.Capabilities.Effective, s.Linux.Seccomp != nil, s.Linux.MaskedPaths)
	}
	if slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.CgroupNamespace }) {
		t.Error("privileged container in its own cgroup namespace")
	}
}

func TestOptsCgroupV2Systemd(t *testing.T) {
	in := critestInput(t)
	in.CgroupDriver = "systemd"
	in.Pod.Config.Linux.CgroupParent = "kubepods-besteffort-poduid1.slice"
	in.Config.Linux.Resources.Unified = map[string]string{"memory.high": "50000000"}
	h := testHost()
	h.CgroupV2, h.Hugetlb = true, true
	s, err := buildSpec(t, in, h)
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.CgroupsPath != "kubepods-besteffort-poduid1.slice:cri-slipway:c1" {
		t.Errorf("cgroups path %q", s.Linux.CgroupsPath)
	}
	if s.Linux.Resources.Unified["memory.high"] != "50000000" || len(s.Linux.Resources.HugepageLimits) != 1 {
		t.Errorf("resources %+v", s.Linux.Resources)
	}
	if !slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.CgroupNamespace && n.Path == "" }) {
		t.Error("no cgroup namespace on cgroup v2")
	}
}

func TestOptsInvalid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Input, *Host)
		err    string
		kind   error
	}{
		{name: "no config", change: func(in *Input, _ *Host) { in.Config = nil }, err: "config: is required"},
		{name: "no pod config", change: func(in *Input, _ *Host) { in.Pod.Config = nil }, err: "sandbox_config: is required"},
		{name: "no id", change: func(in *Input, _ *Host) { in.ID = "" }, err: "container id: is required"},
		{
			name:   "privileged container in an unprivileged pod",
			change: func(in *Input, _ *Host) { in.Config.Linux.SecurityContext.Privileged = true },
			err:    "linux.security_context.privileged: the pod is not privileged",
		},
		{
			name: "unknown capability",
			change: func(in *Input, _ *Host) {
				in.Config.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN", "CHOWN", "CAP_FOO"}}
			},
			err: `linux.security_context.capabilities.add_capabilities[2]: unknown capability "CAP_FOO": invalid argument`,
		},
		{
			name: "run_as_group without a user",
			change: func(in *Input, _ *Host) {
				in.Config.Linux.SecurityContext.RunAsUser = nil
				in.Config.Linux.SecurityContext.RunAsGroup = &runtimeapi.Int64Value{Value: 1002}
			},
			err: "linux.security_context.run_as_group: needs run_as_user or run_as_username",
		},
		{
			name:   "unified on cgroup v1",
			change: func(in *Input, _ *Host) { in.Config.Linux.Resources.Unified = map[string]string{"memory.high": "1"} },
			err:    "linux.resources.unified: needs cgroup v2",
		},
		{
			name:   "CDI devices with CDI disabled",
			change: func(in *Input, _ *Host) { in.CDIDevices = []string{"vendor.com/gpu=0"} },
			err:    "CDI devices vendor.com/gpu=0: CDI is disabled on this node", kind: errdefs.ErrFailedPrecondition,
		},
		{name: "cgroup driver", change: func(in *Input, _ *Host) { in.CgroupDriver = "other" }, err: `cgroup driver "other"`},
		{name: "PID POD without infra", change: func(in *Input, _ *Host) { in.Pod.Infra = false }, err: "namespace_options.pid: POD, but pod pod1 has no shared PID namespace"},
		{
			name: "AppArmor Localhost without AppArmor",
			change: func(in *Input, _ *Host) {
				in.Config.Linux.SecurityContext.Apparmor = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "p"}
			},
			err: `linux.security_context.apparmor: AppArmor profile "p" cannot be applied`,
		},
		{
			name:   "no command",
			change: func(in *Input, _ *Host) { in.Config.Command, in.Config.Args, in.Image = nil, nil, ocispec.Image{} },
			err:    "command: none given",
		},
		{
			name:   "rro on an old kernel",
			change: func(in *Input, h *Host) { in.Config.Mounts[0].RecursiveReadOnly, h.RecursiveReadOnly = true, false },
			err:    "mounts[0].recursive_read_only: RROUnsupported",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, h := critestInput(t), testHost()
			tc.change(&in, &h)
			_, err := buildSpec(t, in, h)
			wantErr(t, err, tc.err)
			kind := tc.kind
			if kind == nil {
				kind = errdefs.ErrInvalidArgument
			}
			if err != nil && !errors.Is(err, kind) && tc.name != "cgroup driver" {
				t.Errorf("error %v is not %v", err, kind)
			}
		})
	}
}

func TestOptsHostNetworkPod(t *testing.T) {
	in := critestInput(t)
	in.Pod.Namespaces = namespaces.Pinned{}
	in.Pod.ShmPath = ""
	s, err := buildSpec(t, in, testHost())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace || n.Type == specs.IPCNamespace || n.Type == specs.UTSNamespace {
			t.Errorf("namespace %s in a host-network, host-IPC pod", n.Type)
		}
	}
	if !slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/dev/shm" && m.Source == "/dev/shm" }) {
		t.Error("host IPC without the node's /dev/shm")
	}
}

// BenchmarkOpts measures what making a container's spec costs
// CreateContainer: Opts and applying the options (reading the image's
// /etc/passwd and /etc/group from a bind mount, the default seccomp
// profile).
func BenchmarkOpts(b *testing.B) {
	in := critestInput(b)
	for b.Loop() {
		opts, err := Opts(in)
		if err != nil {
			b.Fatal(err)
		}
		s, err := oci.GenerateSpec(testContext(), nil, &containers.Container{ID: "c1"})
		if err != nil {
			b.Fatal(err)
		}
		if err := apply(s, opts...); err != nil {
			b.Fatal(err)
		}
	}
}
