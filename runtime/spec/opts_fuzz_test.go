package spec

import (
	"errors"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/cap"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// kubeletConfig is a container config as kubelet 1.37 sends it for a
// restricted-PSS Deployment container: service-account volume, /etc/hosts
// and termination log mounts, env, labels and annotations, resources,
// dropped capabilities, non-root user, RuntimeDefault seccomp, kubelet's
// masked and read-only paths, its own PID namespace.
func kubeletConfig() *runtimeapi.ContainerConfig {
	const podDir = "/var/lib/kubelet/pods/0b5c7c1e-4c8e-4a55-9a8e-6f0d2c1b9a31"
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "web"},
		Image: &runtimeapi.ImageSpec{
			Image:              "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741",
			UserSpecifiedImage: "registry.k8s.io/e2e-test-images/busybox:1.29-2",
		},
		Command: []string{"/bin/sh", "-c"},
		Args:    []string{"httpd -f -p 8080"},
		Envs: []*runtimeapi.KeyValue{
			{Key: "KUBERNETES_SERVICE_HOST", Value: []byte("10.96.0.1")},
			{Key: "KUBERNETES_PORT", Value: []byte("tcp://10.96.0.1:443")},
		},
		Mounts: []*runtimeapi.Mount{
			{
				ContainerPath: "/var/run/secrets/kubernetes.io/serviceaccount",
				HostPath:      podDir + "/volumes/kubernetes.io~projected/kube-api-access-7xq2d", Readonly: true,
			},
			{ContainerPath: "/etc/hosts", HostPath: podDir + "/etc-hosts"},
			{ContainerPath: "/dev/termination-log", HostPath: podDir + "/containers/web/4d3c2b1a"},
		},
		Labels: map[string]string{"io.kubernetes.container.name": "web", "io.kubernetes.pod.namespace": "default"},
		Annotations: map[string]string{
			"io.kubernetes.container.hash": "6f1c2a9b", "io.kubernetes.container.restartCount": "0",
			"io.kubernetes.container.terminationMessagePath": "/dev/termination-log",
		},
		LogPath: "web/0.log",
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{
				CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 128 << 20, OomScoreAdj: 968,
				HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB"}, {PageSize: "1GB"}},
			},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				Capabilities:       &runtimeapi.Capability{DropCapabilities: []string{"ALL"}},
				NamespaceOptions:   &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				RunAsUser:          &runtimeapi.Int64Value{Value: 1000},
				RunAsGroup:         &runtimeapi.Int64Value{Value: 3000},
				SupplementalGroups: []int64{2000},
				ReadonlyRootfs:     true,
				NoNewPrivs:         true,
				MaskedPaths:        []string{"/proc/acpi", "/proc/kcore", "/proc/keys", "/sys/firmware"},
				ReadonlyPaths:      []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
				Seccomp:            &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
			},
		},
	}
}

// specSeeds are container configs as kubelet and critest send them.
func specSeeds(t testing.TB) []*runtimeapi.ContainerConfig {
	privileged := kubeletConfig()
	privileged.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{
		Privileged: true, NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE},
	}
	privileged.Devices = []*runtimeapi.Device{{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "rw"}}
	interactive := kubeletConfig()
	interactive.Tty, interactive.Stdin, interactive.WorkingDir = true, true, "/srv"
	interactive.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN"}, DropCapabilities: []string{"MKNOD"}}
	interactive.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "profile.json"}
	interactive.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	byName := kubeletConfig()
	byName.Linux.SecurityContext.RunAsUser, byName.Linux.SecurityContext.RunAsUsername = nil, "app"
	byName.Linux.SecurityContext.SupplementalGroupsPolicy = runtimeapi.SupplementalGroupsPolicy_Strict
	byName.Mounts = append(byName.Mounts, &runtimeapi.Mount{
		ContainerPath: "/data", HostPath: "/srv/data", Propagation: runtimeapi.MountPropagation_PROPAGATION_PRIVATE,
		MountOptions: []string{"noexec", "nosuid"},
	})
	return []*runtimeapi.ContainerConfig{critestInput(t).Config, kubeletConfig(), privileged, interactive, byName}
}

// fuzzEnv is the node a fuzzed config's spec is made on: every host path
// lives under hostRoot, so the directories WithMounts creates stay there.
type fuzzEnv struct {
	in       Input
	hostRoot string
}

func newFuzzEnv(t testing.TB) fuzzEnv {
	in := critestInput(t)
	in.TargetPID = 4343
	in.Pod.Config.LogDirectory = t.TempDir()
	in.SeccompRoot = t.TempDir()
	profile := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}`
	if err := os.WriteFile(filepath.Join(in.SeccompRoot, "profile.json"), []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	in.Image = ocispec.Image{Config: ocispec.ImageConfig{Entrypoint: []string{"/bin/entry"}, Cmd: []string{"serve"}, WorkingDir: "/app"}}
	in.RootfsMounts = []mount.Mount{{Type: "bind", Source: testRootfs(t), Options: []string{"rbind", "ro"}}}
	return fuzzEnv{in: in, hostRoot: t.TempDir()}
}

// input is the Input for c, with c's host paths moved under hostRoot by
// prefixing them, which keeps any ".." or NUL in them.
func (e fuzzEnv) input(c *runtimeapi.ContainerConfig) Input {
	in := e.in
	in.Config = c
	in.Pod.Config = proto.CloneOf(e.in.Pod.Config)
	in.Pod.Config.Linux.SecurityContext.Privileged = c.GetLinux().GetSecurityContext().GetPrivileged()
	for _, m := range c.GetMounts() {
		if m != nil && path.IsAbs(m.HostPath) {
			m.HostPath = e.hostRoot + m.HostPath
		}
	}
	for _, d := range c.GetDevices() {
		if d != nil && path.IsAbs(d.HostPath) && d.HostPath != os.DevNull {
			d.HostPath = e.hostRoot + d.HostPath
		}
	}
	return in
}

// FuzzSpecOpts makes the spec of fuzzed container configs (wire-encoded
// ContainerConfig) in a fixed pod. It must not panic; it must refuse with
// an InvalidArgument-class error or make a spec that holds checkSpec's
// invariants; and what ValidateConfig refuses, Opts refuses too.
func FuzzSpecOpts(f *testing.F) {
	for _, c := range specSeeds(f) {
		f.Add(marshal(f, c))
	}
	env := newFuzzEnv(f)
	h := testHost()
	f.Fuzz(func(t *testing.T, b []byte) {
		var c runtimeapi.ContainerConfig
		if proto.Unmarshal(b, &c) != nil {
			return
		}
		in := env.input(&c)
		vErr := validateConfig(&c, h)
		if vErr != nil && !invalidClass(vErr) {
			t.Fatalf("ValidateConfig: %v is not InvalidArgument or NotImplemented", vErr)
		}
		opts, err := buildOpts(in, h)
		if err != nil {
			if !invalidClass(err) {
				t.Fatalf("Opts: %v is not InvalidArgument or NotImplemented", err)
			}
			return
		}
		if vErr != nil {
			t.Fatalf("ValidateConfig refused what Opts accepts: %v", vErr)
		}
		s, err := oci.GenerateSpec(testContext(), nil, &containers.Container{ID: in.ID}, opts...)
		if err != nil {
			if !invalidClass(err) && !errdefs.IsFailedPrecondition(err) {
				t.Fatalf("making the spec: %v is not an InvalidArgument-class error", err)
			}
			return
		}
		checkSpec(t, &c, s, env.hostRoot)
	})
}

func invalidClass(err error) bool {
	return errors.Is(err, errdefs.ErrInvalidArgument) || errors.Is(err, errdefs.ErrNotImplemented)
}

// checkSpec checks what runc needs of a spec, and what slipway promises.
func checkSpec(t *testing.T, c *runtimeapi.ContainerConfig, s *oci.Spec, hostRoot string) {
	t.Helper()
	p := s.Process
	if p == nil || len(p.Args) == 0 || !path.IsAbs(p.Cwd) || s.Root == nil || s.Linux == nil {
		t.Fatalf("spec without process, args, absolute cwd, root or linux: %+v", s)
	}
	for _, e := range p.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" || strings.ContainsRune(e, 0) {
			t.Fatalf("env %q is not NAME=value", e)
		}
	}
	for _, a := range p.Args {
		if strings.ContainsRune(a, 0) {
			t.Fatalf("arg %q has a NUL", a)
		}
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		t.Fatalf("oom_score_adj %d", *p.OOMScoreAdj)
	}
	if p.User.UID > math.MaxInt32 || p.User.GID > math.MaxInt32 {
		t.Fatalf("user %+v", p.User)
	}
	if caps := p.Capabilities; caps != nil {
		for _, set := range [][]string{caps.Bounding, caps.Effective, caps.Permitted, caps.Inheritable, caps.Ambient} {
			for _, cp := range set {
				if !slices.Contains(cap.Known(), cp) {
					t.Fatalf("unknown capability %q", cp)
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, m := range s.Mounts {
		dst := path.Clean(m.Destination)
		if !path.IsAbs(m.Destination) || seen[dst] || slices.Contains(strings.Split(m.Destination, "/"), "..") {
			t.Fatalf("mount destination %q: not absolute, twice, or with ..", m.Destination)
		}
		seen[dst] = true
		if m.Type == "bind" && (!filepath.IsAbs(m.Source) || filepath.Clean(m.Source) != m.Source) {
			t.Fatalf("bind mount of %q", m.Source)
		}
	}
	for _, m := range c.GetMounts() {
		if !strings.HasPrefix(m.HostPath, hostRoot+"/") {
			t.Fatalf("mount of %q outside the host root", m.HostPath)
		}
	}
	types := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		if types[ns.Type] {
			t.Fatalf("namespace %s twice", ns.Type)
		}
		types[ns.Type] = true
	}
	for _, d := range s.Linux.Devices {
		if !path.IsAbs(d.Path) || slices.Contains(strings.Split(d.Path, "/"), "..") {
			t.Fatalf("device at %q", d.Path)
		}
	}
	if r := s.Linux.Resources; r != nil {
		if r.Memory != nil && r.Memory.Limit != nil && *r.Memory.Limit < 0 {
			t.Fatalf("memory limit %d", *r.Memory.Limit)
		}
		if r.CPU != nil && r.CPU.Quota != nil && *r.CPU.Quota < -1 {
			t.Fatalf("cpu quota %d", *r.CPU.Quota)
		}
	}
	if c.GetLinux().GetSecurityContext().GetPrivileged() && s.Linux.Seccomp != nil {
		t.Fatal("privileged container with a seccomp profile")
	}
}

func marshal(t testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSpecSeedsMakeSpecs runs the fuzz seeds through FuzzSpecOpts' checks
// and requires that each makes a spec, so fuzzing starts past validation.
func TestSpecSeedsMakeSpecs(t *testing.T) {
	env := newFuzzEnv(t)
	for i, c := range specSeeds(t) {
		in := env.input(c)
		opts, err := buildOpts(in, testHost())
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		s, err := oci.GenerateSpec(testContext(), nil, &containers.Container{ID: in.ID}, opts...)
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		checkSpec(t, c, s, env.hostRoot)
	}
}
