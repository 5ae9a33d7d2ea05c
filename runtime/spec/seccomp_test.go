package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// blockChmod is critest's Localhost profile.
const blockChmod = `{
     "defaultAction": "SCMP_ACT_ALLOW",
     "syscalls": [{"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO"}]
}`

func TestWithSeccomp(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "block-chmod.json"), []byte(blockChmod), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bad.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(root, "block-chmod.json")
	profile := func(t runtimeapi.SecurityProfile_ProfileType, ref string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: t, LocalhostRef: ref}
	}
	const (
		none    = "none"
		deflt   = "default"
		chmodOK = "block-chmod"
	)
	for _, tc := range []struct {
		name string
		sc   *runtimeapi.LinuxContainerSecurityContext
		want string
		err  string
	}{
		{name: "nil is unconfined", sc: nil, want: none},
		{name: "RuntimeDefault", sc: &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{}}, want: deflt},
		{name: "Unconfined", sc: &runtimeapi.LinuxContainerSecurityContext{Seccomp: profile(runtimeapi.SecurityProfile_Unconfined, "")}, want: none},
		{name: "Localhost absolute", sc: &runtimeapi.LinuxContainerSecurityContext{Seccomp: profile(runtimeapi.SecurityProfile_Localhost, abs)}, want: chmodOK},
		{name: "Localhost relative to the root", sc: &runtimeapi.LinuxContainerSecurityContext{Seccomp: profile(runtimeapi.SecurityProfile_Localhost, "block-chmod.json")}, want: chmodOK},
		{
			name: "privileged ignores any profile",
			sc:   &runtimeapi.LinuxContainerSecurityContext{Privileged: true, Seccomp: profile(runtimeapi.SecurityProfile_Localhost, abs)},
			want: none,
		},
		{name: "deprecated runtime/default", sc: &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "runtime/default"}, want: deflt},
		{name: "deprecated docker/default", sc: &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "docker/default"}, want: deflt},
		{name: "deprecated unconfined", sc: &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "unconfined"}, want: none},
		{name: "deprecated localhost", sc: &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "localhost/" + abs}, want: chmodOK},
		{name: "deprecated unknown", sc: &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "strict"}, err: `seccomp_profile_path: unknown profile "strict"`},
		{
			name: "missing profile file",
			sc:   &runtimeapi.LinuxContainerSecurityContext{Seccomp: profile(runtimeapi.SecurityProfile_Localhost, "nope.json")},
			err:  "linux.security_context.seccomp.localhost_ref: seccomp profile: stat " + filepath.Join(root, "nope.json"),
		},
		{
			name: "profile that is no regular file",
			sc:   &runtimeapi.LinuxContainerSecurityContext{Seccomp: profile(runtimeapi.SecurityProfile_Localhost, "/dev/zero")},
			err:  "seccomp.localhost_ref: seccomp profile /dev/zero is not a regular file",
		},
		{
			name: "profile that is a directory",
			sc:   &runtimeapi.LinuxContainerSecurityContext{Seccomp: profile(runtimeapi.SecurityProfile_Localhost, root)},
			err:  "is not a regular file",
		},
		{
			name: "bad profile file",
			sc:   &runtimeapi.LinuxContainerSecurityContext{Seccomp: profile(runtimeapi.SecurityProfile_Localhost, "bad.json")},
			err:  "seccomp.localhost_ref: seccomp profile " + filepath.Join(root, "bad.json"),
		},
		{
			name: "relative path out of the root",
			sc:   &runtimeapi.LinuxContainerSecurityContext{Seccomp: profile(runtimeapi.SecurityProfile_Localhost, "../etc/x.json")},
			err:  `seccomp.localhost_ref: relative path "../etc/x.json" leaves the profile directory`,
		},
		{name: "Localhost without ref", sc: &runtimeapi.LinuxContainerSecurityContext{Seccomp: profile(runtimeapi.SecurityProfile_Localhost, "")}, err: "localhost_ref: is required"},
		{name: "ref without Localhost", sc: &runtimeapi.LinuxContainerSecurityContext{Seccomp: profile(runtimeapi.SecurityProfile_RuntimeDefault, abs)}, err: "localhost_ref: must only be set with profile_type Localhost"},
		{name: "unknown type", sc: &runtimeapi.LinuxContainerSecurityContext{Seccomp: profile(7, "")}, err: "seccomp.profile_type: unknown type 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t)
			err := apply(s, WithSeccomp(tc.sc, root))
			wantErr(t, err, tc.err)
			if err != nil {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("error %v is not InvalidArgument", err)
				}
				return
			}
			sp := s.Linux.Seccomp
			switch tc.want {
			case none:
				if sp != nil {
					t.Errorf("seccomp profile %v, want none", sp.DefaultAction)
				}
			case deflt:
				if sp == nil || sp.DefaultAction != specs.ActErrno || len(sp.Syscalls) < 10 {
					t.Fatalf("seccomp profile %+v, want moby's default", sp)
				}
			case chmodOK:
				if sp == nil || sp.DefaultAction != specs.ActAllow || len(sp.Syscalls) != 1 ||
					!slices.Equal(sp.Syscalls[0].Names, []string{"chmod", "fchmodat"}) || sp.Syscalls[0].Action != specs.ActErrno {
					t.Errorf("seccomp profile %+v, want the block-chmod one", sp)
				}
			}
		})
	}
}

// TestDefaultSeccompFollowsCapabilities checks that the default profile
// is made for the capabilities the process ends up with: CAP_SYS_ADMIN
// allows mount(2), for example.
func TestDefaultSeccompFollowsCapabilities(t *testing.T) {
	allows := func(caps *runtimeapi.Capability, syscall string) bool {
		s := newSpec(t)
		sc := &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{}}
		if err := apply(s, WithCapabilities(caps, nil), WithSeccomp(sc, "")); err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(s.Linux.Seccomp.Syscalls, func(sc specs.LinuxSyscall) bool {
			return sc.Action == specs.ActAllow && slices.Contains(sc.Names, syscall)
		})
	}
	if allows(nil, "mount") {
		t.Error("default profile allows mount without CAP_SYS_ADMIN")
	}
	if !allows(&runtimeapi.Capability{AddCapabilities: []string{"SYS_ADMIN"}}, "mount") {
		t.Error("default profile denies mount with CAP_SYS_ADMIN")
	}
}

func TestWithAppArmor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sc      *runtimeapi.LinuxContainerSecurityContext
		enabled bool
		err     string
	}{
		{name: "nil without AppArmor"},
		{name: "RuntimeDefault without AppArmor", sc: &runtimeapi.LinuxContainerSecurityContext{Apparmor: &runtimeapi.SecurityProfile{}}},
		{name: "Unconfined without AppArmor", sc: &runtimeapi.LinuxContainerSecurityContext{Apparmor: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}}},
		{name: "deprecated runtime/default without AppArmor", sc: &runtimeapi.LinuxContainerSecurityContext{ApparmorProfile: "runtime/default"}},
		{
			name: "Localhost without AppArmor",
			sc: &runtimeapi.LinuxContainerSecurityContext{Apparmor: &runtimeapi.SecurityProfile{
				ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "localhost/my-profile"}},
			err: `linux.security_context.apparmor: AppArmor profile "my-profile" cannot be applied: this node's kernel has no AppArmor`,
		},
		{
			name: "deprecated localhost without AppArmor",
			sc:   &runtimeapi.LinuxContainerSecurityContext{ApparmorProfile: "localhost/my-profile"},
			err:  `linux.security_context.apparmor_profile: AppArmor profile "my-profile" cannot be applied`,
		},
		{name: "Unconfined with AppArmor", enabled: true, sc: &runtimeapi.LinuxContainerSecurityContext{ApparmorProfile: "unconfined"}},
		{name: "RuntimeDefault for a privileged container with AppArmor", enabled: true, sc: &runtimeapi.LinuxContainerSecurityContext{Privileged: true}},
		{name: "unknown type", sc: &runtimeapi.LinuxContainerSecurityContext{Apparmor: &runtimeapi.SecurityProfile{ProfileType: 5}}, err: "apparmor.profile_type: unknown type 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t)
			err := apply(s, WithAppArmor(tc.sc, tc.enabled))
			wantErr(t, err, tc.err)
			if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %v is not InvalidArgument", err)
			}
			if err == nil && s.Process.ApparmorProfile != "" {
				t.Errorf("AppArmor profile %q, want none", s.Process.ApparmorProfile)
			}
		})
	}
}
