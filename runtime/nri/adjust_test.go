package nri

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/spec"
	"tags.cncf.io/container-device-interface/pkg/cdi"
)

func baseSpec() *specs.Spec {
	return &specs.Spec{
		Process: &specs.Process{Args: []string{"sh"}, Env: []string{"PATH=/bin", "KEEP=1", "DROP=1"}},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/data", Type: "bind", Source: "/old"},
		},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}}},
	}
}

func TestAdjust(t *testing.T) {
	int64p := func(v int64) *int64 { return &v }
	uint64p := func(v uint64) *uint64 { return &v }
	tests := []struct {
		name   string
		adjust func(a *api.ContainerAdjustment)
		check  func(t *testing.T, s *specs.Spec)
	}{{
		name: "env: set, replace and remove",
		adjust: func(a *api.ContainerAdjustment) {
			a.AddEnv("NEW", "v")
			a.AddEnv("KEEP", "2")
			a.RemoveEnv("DROP")
		},
		check: func(t *testing.T, s *specs.Spec) {
			want := []string{"PATH=/bin", "KEEP=2", "NEW=v"}
			if !reflect.DeepEqual(s.Process.Env, want) {
				t.Errorf("env = %v, want %v", s.Process.Env, want)
			}
		},
	}, {
		name: "mounts: add, and replace the one at the same destination",
		adjust: func(a *api.ContainerAdjustment) {
			a.AddMount(&api.Mount{Destination: "/data", Type: "bind", Source: "/new", Options: []string{"rbind", "ro"}})
			a.AddMount(&api.Mount{Destination: "/extra", Type: "tmpfs", Source: "tmpfs"})
		},
		check: func(t *testing.T, s *specs.Spec) {
			byDest := map[string]specs.Mount{}
			for _, m := range s.Mounts {
				if _, dup := byDest[m.Destination]; dup {
					t.Errorf("two mounts at %s", m.Destination)
				}
				byDest[m.Destination] = m
			}
			if byDest["/data"].Source != "/new" || byDest["/extra"].Type != "tmpfs" || byDest["/proc"].Type != "proc" {
				t.Errorf("mounts = %+v", s.Mounts)
			}
		},
	}, {
		name: "annotations, args and hooks",
		adjust: func(a *api.ContainerAdjustment) {
			a.AddAnnotation("nri.example/a", "b")
			a.SetArgs([]string{"sleep", "1"})
			a.AddHooks(&api.Hooks{Poststart: []*api.Hook{{Path: "/bin/true"}}})
		},
		check: func(t *testing.T, s *specs.Spec) {
			if s.Annotations["nri.example/a"] != "b" {
				t.Errorf("annotations = %v", s.Annotations)
			}
			if !reflect.DeepEqual(s.Process.Args, []string{"sleep", "1"}) {
				t.Errorf("args = %v", s.Process.Args)
			}
			if s.Hooks == nil || len(s.Hooks.Poststart) != 1 || s.Hooks.Poststart[0].Path != "/bin/true" {
				t.Errorf("hooks = %+v", s.Hooks)
			}
		},
	}, {
		name: "devices and resources",
		adjust: func(a *api.ContainerAdjustment) {
			a.AddDevice(&api.LinuxDevice{Path: "/dev/fake", Type: "c", Major: 1, Minor: 7})
			a.SetLinuxMemoryLimit(64 << 20)
			a.SetLinuxCPUShares(512)
			a.SetLinuxCPUSetCPUs("0")
			a.SetLinuxPidLimits(100)
		},
		check: func(t *testing.T, s *specs.Spec) {
			if len(s.Linux.Devices) != 1 || s.Linux.Devices[0].Path != "/dev/fake" || s.Linux.Devices[0].Major != 1 {
				t.Errorf("devices = %+v", s.Linux.Devices)
			}
			r := s.Linux.Resources
			if r == nil || !reflect.DeepEqual(r.Memory.Limit, int64p(64<<20)) || !reflect.DeepEqual(r.CPU.Shares, uint64p(512)) ||
				r.CPU.Cpus != "0" || r.Pids == nil || r.Pids.Limit == nil || *r.Pids.Limit != 100 {
				t.Errorf("resources = %+v", r)
			}
		},
	}, {
		name: "rlimits, sysctls and namespaces",
		adjust: func(a *api.ContainerAdjustment) {
			a.AddRlimit("RLIMIT_NOFILE", 2048, 1024)
			a.SetLinuxSysctl("net.ipv4.ip_forward", "1")
			a.AddOrReplaceNamespace(&api.LinuxNamespace{Type: "network", Path: "/proc/1/ns/net"})
		},
		check: func(t *testing.T, s *specs.Spec) {
			want := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 2048, Soft: 1024}}
			if !reflect.DeepEqual(s.Process.Rlimits, want) {
				t.Errorf("rlimits = %+v, want %+v", s.Process.Rlimits, want)
			}
			if s.Linux.Sysctl["net.ipv4.ip_forward"] != "1" {
				t.Errorf("sysctls = %v", s.Linux.Sysctl)
			}
			want2 := []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}}
			if !reflect.DeepEqual(s.Linux.Namespaces, want2) {
				t.Errorf("namespaces = %+v", s.Linux.Namespaces)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &api.ContainerAdjustment{}
			tt.adjust(a)
			s := baseSpec()
			if err := Adjust(context.Background(), s, a, nil); err != nil {
				t.Fatalf("Adjust: %v", err)
			}
			tt.check(t, s)
		})
	}
}

func TestAdjustNil(t *testing.T) {
	s := baseSpec()
	if err := Adjust(context.Background(), s, nil, nil); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, baseSpec()) {
		t.Errorf("a nil adjustment changed the spec: %+v", s)
	}
}

// testCDISpec defines slipway.dev/test=dev0: /dev/null as
// /dev/slipway-test0 and an env var.
const testCDISpec = `cdiVersion: "0.6.0"
kind: slipway.dev/test
devices:
  - name: dev0
    containerEdits:
      deviceNodes:
        - path: /dev/slipway-test0
          hostPath: /dev/null
      env:
        - SLIPWAY_CDI=dev0
`

func TestAdjustCDI(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "test.yaml"), []byte(testCDISpec), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := spec.NewCDIRegistry([]string{dir})
	t.Cleanup(func() { _ = reg.Configure(cdi.WithAutoRefresh(false)) })
	ctx := context.Background()

	a := &api.ContainerAdjustment{}
	a.AddCDIDevice(&api.CDIDevice{Name: "slipway.dev/test=dev0"})
	s := baseSpec()
	if err := Adjust(ctx, s, a, reg); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(s.Linux.Devices, func(d specs.LinuxDevice) bool { return d.Path == "/dev/slipway-test0" }) {
		t.Errorf("devices %+v lack the plugin's CDI device", s.Linux.Devices)
	}
	if !slices.Contains(s.Process.Env, "SLIPWAY_CDI=dev0") {
		t.Errorf("env %v lacks the CDI device's env", s.Process.Env)
	}

	unknown := &api.ContainerAdjustment{}
	unknown.AddCDIDevice(&api.CDIDevice{Name: "slipway.dev/test=nope"})
	if err := Adjust(ctx, baseSpec(), unknown, reg); !errdefs.IsNotFound(err) {
		t.Errorf("Adjust with an unknown CDI device = %v, want NotFound", err)
	}
	if err := Adjust(ctx, baseSpec(), a, nil); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Adjust with CDI off = %v, want FailedPrecondition", err)
	}
}

func TestSpecEditor(t *testing.T) {
	s := &specs.Spec{}
	e := specEditor{s}
	e.AddProcessEnv("A", "1")
	e.AddProcessEnv("A", "2")
	e.AddDevice(specs.LinuxDevice{Path: "/dev/x", Major: 1})
	e.AddDevice(specs.LinuxDevice{Path: "/dev/x", Major: 2})
	e.AddLinuxResourcesHugepageLimit("2MB", 1)
	e.AddLinuxResourcesHugepageLimit("2MB", 2)
	if err := e.AddOrReplaceLinuxNamespace("bogus", ""); err == nil {
		t.Error("an unknown namespace was accepted")
	}
	if err := e.SetLinuxRootPropagation("sideways"); err == nil {
		t.Error("an unknown rootfs propagation was accepted")
	}
	if !reflect.DeepEqual(s.Process.Env, []string{"A=2"}) {
		t.Errorf("env = %v", s.Process.Env)
	}
	if len(s.Linux.Devices) != 1 || s.Linux.Devices[0].Major != 2 {
		t.Errorf("devices = %+v", s.Linux.Devices)
	}
	if len(s.Linux.Resources.HugepageLimits) != 1 || s.Linux.Resources.HugepageLimits[0].Limit != 2 {
		t.Errorf("hugepage limits = %+v", s.Linux.Resources.HugepageLimits)
	}
	e.RemoveDevice("/dev/x")
	e.RemoveMount("/none")
	e.RemoveLinuxSysctl("k")
	if len(s.Linux.Devices) != 0 {
		t.Errorf("devices after remove = %+v", s.Linux.Devices)
	}
}
