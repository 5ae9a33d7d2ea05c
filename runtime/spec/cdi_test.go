package spec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"tags.cncf.io/container-device-interface/pkg/cdi"
)

// testCDISpec injects /dev/null as /dev/slipway-test0, an env var and a
// mount, for device slipway.dev/test=dev0.
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
containerEdits:
  mounts:
    - hostPath: /tmp
      containerPath: /cdi-mount
      options: [bind, ro]
`

func writeCDISpec(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWithCDIDevices(t *testing.T) {
	dir := t.TempDir()
	writeCDISpec(t, dir, "test.yaml", testCDISpec)
	reg := NewCDIRegistry([]string{dir})
	t.Cleanup(func() { _ = reg.Configure(cdi.WithAutoRefresh(false)) })
	s := newSpec(t)
	if err := apply(s, WithCDIDevices(reg, []string{"slipway.dev/test=dev0", "slipway.dev/test=dev0"})); err != nil {
		t.Fatal(err)
	}
	var node bool
	for _, d := range s.Linux.Devices {
		if d.Path == "/dev/slipway-test0" && d.Type == "c" && d.Major == 1 && d.Minor == 3 {
			node = true
		}
	}
	if !node {
		t.Errorf("devices %+v lack /dev/slipway-test0 (1:3)", s.Linux.Devices)
	}
	var rule bool
	for _, r := range s.Linux.Resources.Devices {
		if r.Allow && r.Major != nil && *r.Major == 1 && r.Minor != nil && *r.Minor == 3 {
			rule = true
		}
	}
	if !rule {
		t.Errorf("no cgroup rule allows 1:3: %+v", s.Linux.Resources.Devices)
	}
	if !slices.Contains(s.Process.Env, "SLIPWAY_CDI=dev0") {
		t.Errorf("env %v lacks SLIPWAY_CDI=dev0", s.Process.Env)
	}
	if !slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/cdi-mount" && m.Source == "/tmp" }) {
		t.Errorf("mounts %+v lack /cdi-mount", s.Mounts)
	}
}

func TestWithCDIDevicesRefreshes(t *testing.T) {
	dir := t.TempDir()
	reg := NewCDIRegistry([]string{dir})
	t.Cleanup(func() { _ = reg.Configure(cdi.WithAutoRefresh(false)) })
	if err := apply(newSpec(t), WithCDIDevices(reg, []string{"slipway.dev/test=dev0"})); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("before the spec: %v, want NotFound", err)
	}
	writeCDISpec(t, dir, "test.yaml", testCDISpec)
	// The watch sees the new file asynchronously: poll.
	for i := 0; ; i++ {
		err := apply(newSpec(t), WithCDIDevices(reg, []string{"slipway.dev/test=dev0"}))
		if err == nil {
			break
		}
		if i == 1000 {
			t.Fatalf("the new spec is never seen: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWithCDIDevicesErrors(t *testing.T) {
	dir := t.TempDir()
	writeCDISpec(t, dir, "test.yaml", testCDISpec)
	writeCDISpec(t, dir, "broken.yaml", "cdiVersion: [\n")
	writeCDISpec(t, dir, "missing-node.yaml", `cdiVersion: "0.6.0"
kind: slipway.dev/gone
devices:
  - name: dev0
    containerEdits:
      deviceNodes:
        - path: /dev/slipway-gone
          hostPath: /dev/slipway-does-not-exist
`)
	reg := NewCDIRegistry([]string{dir})
	for _, tc := range []struct {
		name  string
		reg   CDIRegistry
		names []string
		err   string
		kind  error
	}{
		{name: "none", reg: nil},
		{
			name: "unknown device", reg: reg, names: []string{"slipway.dev/test=dev0", "slipway.dev/test=dev9"},
			err: "CDI device slipway.dev/test=dev9: not defined by any spec in " + dir, kind: errdefs.ErrNotFound,
		},
		{name: "broken spec is named", reg: reg, names: []string{"slipway.dev/test=dev9"}, err: "broken.yaml", kind: errdefs.ErrNotFound},
		{
			name: "host device missing", reg: reg, names: []string{"slipway.dev/gone=dev0"},
			err: "CDI devices slipway.dev/gone=dev0: ", kind: errdefs.ErrInvalidArgument,
		},
		{name: "disabled", names: []string{"slipway.dev/test=dev0"}, err: "CDI is disabled", kind: errdefs.ErrFailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := apply(newSpec(t), WithCDIDevices(tc.reg, tc.names))
			wantErr(t, err, tc.err)
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("error %v is not %v", err, tc.kind)
			}
		})
	}
}

func TestCDIDeviceNames(t *testing.T) {
	c := &runtimeapi.ContainerConfig{
		CDIDevices: []*runtimeapi.CDIDevice{{Name: "a.com/gpu=0"}, {Name: "a.com/gpu=1"}},
		Annotations: map[string]string{
			"cdi.k8s.io/z_1": "a.com/gpu=0,b.com/nic=x",
			"cdi.k8s.io/a_1": "b.com/nic=y",
			"other":          "ignored",
		},
	}
	got, err := CDIDeviceNames(map[string]string{"cdi.k8s.io/pod": "c.com/fpga=1"}, c)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a.com/gpu=0", "a.com/gpu=1", "c.com/fpga=1", "b.com/nic=y", "b.com/nic=x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := CDIDeviceNames(map[string]string{"cdi.k8s.io/pod": "nope"}, c); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad pod annotation: %v, want InvalidArgument", err)
	}
}
