package spec

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/containerd/containerd/v2/pkg/cap"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// defaultCaps is containerd's default capability set, in its order.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

func without(caps []string, drop ...string) []string {
	return slices.DeleteFunc(slices.Clone(caps), func(c string) bool { return slices.Contains(drop, c) })
}

func TestWithCapabilities(t *testing.T) {
	// allCaps is what this node could grant: everything but CAP_SYS_RESOURCE,
	// as on the test machine.
	allCaps := without(cap.Known(), "CAP_SYS_RESOURCE")
	for _, tc := range []struct {
		name                   string
		caps                   *runtimeapi.Capability
		main, inherit, ambient []string // main: bounding = effective = permitted
		err                    string
	}{
		{name: "none", main: defaultCaps},
		{
			name: "add with and without prefix, any case",
			caps: &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN", "cap_sys_admin", "CAP_CHOWN"}},
			main: append(slices.Clone(defaultCaps), "CAP_NET_ADMIN", "CAP_SYS_ADMIN"),
		},
		{name: "drop", caps: &runtimeapi.Capability{DropCapabilities: []string{"NET_RAW", "CAP_KILL"}}, main: without(defaultCaps, "CAP_NET_RAW", "CAP_KILL")},
		{name: "add ALL", caps: &runtimeapi.Capability{AddCapabilities: []string{"ALL"}}, main: allCaps},
		{name: "add ALL, drop one", caps: &runtimeapi.Capability{AddCapabilities: []string{"all"}, DropCapabilities: []string{"NET_RAW"}}, main: without(allCaps, "CAP_NET_RAW")},
		{name: "drop ALL", caps: &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}},
		{
			name: "drop ALL, add one",
			caps: &runtimeapi.Capability{DropCapabilities: []string{"ALL"}, AddCapabilities: []string{"NET_BIND_SERVICE"}},
			main: []string{"CAP_NET_BIND_SERVICE"},
		},
		{
			name: "ambient goes to every set",
			caps: &runtimeapi.Capability{DropCapabilities: []string{"ALL"}, AddAmbientCapabilities: []string{"NET_BIND_SERVICE"}},
			main: []string{"CAP_NET_BIND_SERVICE"}, inherit: []string{"CAP_NET_BIND_SERVICE"}, ambient: []string{"CAP_NET_BIND_SERVICE"},
		},
		{
			name: "unknown capability",
			caps: &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN", "CHOWN", "CAP_FOO"}},
			err:  `linux.security_context.capabilities.add_capabilities[2]: unknown capability "CAP_FOO"`,
		},
		{
			name: "capability the node lacks",
			caps: &runtimeapi.Capability{AddCapabilities: []string{"SYS_RESOURCE"}},
			err:  "add_capabilities[0]: CAP_SYS_RESOURCE is not in this node's capability bounding set",
		},
		{
			name: "ALL is not an ambient capability",
			caps: &runtimeapi.Capability{AddAmbientCapabilities: []string{"ALL"}},
			err:  `add_ambient_capabilities[0]: unknown capability "ALL"`,
		},
		{
			name: "unknown dropped capability",
			caps: &runtimeapi.Capability{DropCapabilities: []string{"NOPE"}},
			err:  `drop_capabilities[0]: unknown capability "NOPE"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t)
			err := apply(s, WithCapabilities(tc.caps, allCaps))
			wantErr(t, err, tc.err)
			if err != nil {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("error %v is not InvalidArgument", err)
				}
				return
			}
			c := s.Process.Capabilities
			for name, got := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
				if !slices.Equal(got, tc.main) {
					t.Errorf("%s %v, want %v", name, got, tc.main)
				}
			}
			if !slices.Equal(c.Inheritable, tc.inherit) || !slices.Equal(c.Ambient, tc.ambient) {
				t.Errorf("inheritable %v ambient %v, want %v %v", c.Inheritable, c.Ambient, tc.inherit, tc.ambient)
			}
		})
	}
}

func TestWithPrivileged(t *testing.T) {
	s := newSpec(t)
	all := without(cap.Known(), "CAP_SYS_RESOURCE")
	if err := apply(s, WithSeccomp(&runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{}}, ""), withPrivileged(all)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Process.Capabilities.Effective, all) || !slices.Equal(s.Process.Capabilities.Bounding, all) {
		t.Errorf("capabilities %v, want all the node has", s.Process.Capabilities.Effective)
	}
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil || s.Linux.Seccomp != nil {
		t.Errorf("masked %v readonly %v seccomp %v, want none", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths, s.Linux.Seccomp != nil)
	}
	for _, m := range s.Mounts {
		if m.Type == "sysfs" && slices.Contains(m.Options, "ro") {
			t.Errorf("sysfs is read-only: %v", m.Options)
		}
	}
	if d := s.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow || d[0].Access != "rwm" || d[0].Type != "" {
		t.Errorf("device cgroup %+v, want everything allowed", d)
	}
	if !slices.ContainsFunc(s.Linux.Devices, func(d specs.LinuxDevice) bool { return d.Path == "/dev/null" }) {
		t.Error("host devices missing")
	}
}

func TestWithMaskedPaths(t *testing.T) {
	defaults := newSpec(t).Linux
	for _, tc := range []struct {
		name             string
		sc               *runtimeapi.LinuxContainerSecurityContext
		masked, readonly []string
	}{
		{name: "absent keeps the defaults", masked: defaults.MaskedPaths, readonly: defaults.ReadonlyPaths},
		{
			name:   "given replace them",
			sc:     &runtimeapi.LinuxContainerSecurityContext{MaskedPaths: []string{"/bin/ls"}, ReadonlyPaths: []string{"/tmp"}},
			masked: []string{"/bin/ls"}, readonly: []string{"/tmp"},
		},
		{
			name:   "each list on its own",
			sc:     &runtimeapi.LinuxContainerSecurityContext{ReadonlyPaths: []string{"/tmp"}},
			masked: defaults.MaskedPaths, readonly: []string{"/tmp"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t)
			if err := apply(s, WithMaskedPaths(tc.sc)); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Linux.MaskedPaths, tc.masked) || !slices.Equal(s.Linux.ReadonlyPaths, tc.readonly) {
				t.Errorf("masked %v readonly %v, want %v %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths, tc.masked, tc.readonly)
			}
		})
	}
}

func TestWithNoNewPrivilegesAndReadonlyRootfs(t *testing.T) {
	for _, v := range []bool{true, false} {
		s := newSpec(t)
		s.Process.NoNewPrivileges = !v
		s.Root.Readonly = !v
		if err := apply(s, WithNoNewPrivileges(v), WithReadonlyRootfs(v)); err != nil {
			t.Fatal(err)
		}
		if s.Process.NoNewPrivileges != v || s.Root.Readonly != v {
			t.Errorf("no_new_privs %v readonly %v, want %v", s.Process.NoNewPrivileges, s.Root.Readonly, v)
		}
	}
}

func TestWithDevices(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/dev/null", dir+"/null-link"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		devices []*runtimeapi.Device
		want    []string // "path type major:minor access"
		err     string
	}{
		{
			name:    "device with permissions",
			devices: []*runtimeapi.Device{{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "rw"}},
			want:    []string{"/dev/mynull c 1:3 rw"},
		},
		{
			name:    "symlink, default container path and permissions",
			devices: []*runtimeapi.Device{{HostPath: dir + "/null-link"}, {HostPath: "/dev/zero", Permissions: "mrw"}},
			want:    []string{dir + "/null-link c 1:3 rwm", "/dev/zero c 1:5 mrw"},
		},
		{name: "bad permissions", devices: []*runtimeapi.Device{{HostPath: "/dev/null", Permissions: "rx"}}, err: `devices[0].permissions: "rx" is not a combination of r, w and m`},
		{name: "no host path", devices: []*runtimeapi.Device{{ContainerPath: "/dev/x"}}, err: "devices[0].host_path: is required"},
		{name: "missing device", devices: []*runtimeapi.Device{{HostPath: "/dev/nope"}}, err: "devices[0].host_path: lstat /dev/nope"},
		{name: "not a device", devices: []*runtimeapi.Device{{HostPath: "/etc/hostname"}}, err: "devices[0].host_path:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t)
			err := apply(s, WithDevices(tc.devices))
			wantErr(t, err, tc.err)
			if err != nil {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("error %v is not InvalidArgument", err)
				}
				return
			}
			var got []string
			for _, d := range s.Linux.Devices {
				got = append(got, d.Path+" "+d.Type+" "+itoa(d.Major)+":"+itoa(d.Minor))
			}
			rules := s.Linux.Resources.Devices[1:] // after the default deny-all
			for i := range got {
				got[i] += " " + rules[i].Access
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("devices %q, want %q", got, tc.want)
			}
		})
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
