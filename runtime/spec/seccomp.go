package spec

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/containerd/containerd/v2/contrib/apparmor"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Profile names of the deprecated string fields (seccomp_profile_path,
// apparmor_profile).
const (
	profileRuntimeDefault = "runtime/default"
	profileDockerDefault  = "docker/default"
	profileUnconfined     = "unconfined"
	profileLocalhost      = "localhost/"
	// AppArmorDefaultProfile is the name slipway loads its default
	// AppArmor profile under, where the node has AppArmor.
	AppArmorDefaultProfile = "slipway-default"
	seccompField           = "linux.security_context.seccomp"
	apparmorField          = "linux.security_context.apparmor"
	apparmorProfilesFile   = "/sys/kernel/security/apparmor/profiles"
)

// WithSeccomp applies the security context's seccomp profile (its seccomp
// field, else the deprecated seccomp_profile_path, where empty means
// unconfined): RuntimeDefault is moby's default profile, which allows more
// syscalls to a process with more capabilities, so this option comes after
// the capability ones; Unconfined is none; Localhost is a profile file in
// Docker's JSON format, a relative path taken under root. Privileged
// containers get no profile, whatever is asked.
func WithSeccomp(sc *runtimeapi.LinuxContainerSecurityContext, root string) oci.SpecOpts {
	return must(seccompOpt(sc, root))
}

func seccompOpt(sc *runtimeapi.LinuxContainerSecurityContext, root string) (oci.SpecOpts, error) {
	sp, field, err := seccompProfile(sc)
	if err != nil {
		return nil, err
	}
	if sp == nil {
		return oci.WithSeccompUnconfined, nil
	}
	switch sp.ProfileType {
	case runtimeapi.SecurityProfile_RuntimeDefault:
		return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			p, err := seccomp.GetDefaultProfile(withCaps(s))
			if err != nil {
				return fmt.Errorf("making the default seccomp profile: %w", err)
			}
			s.Linux.Seccomp = p
			return nil
		}, nil
	case runtimeapi.SecurityProfile_Localhost:
		file := sp.LocalhostRef
		if !filepath.IsAbs(file) {
			file = filepath.Join(root, file)
		}
		if _, err := statProfile(file); err != nil {
			return nil, invalid(field+".localhost_ref", "%v", err)
		}
		return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			b, err := readProfile(file)
			if err != nil {
				return invalid(field+".localhost_ref", "%v", err)
			}
			p, err := seccomp.LoadProfile(string(b), withCaps(s))
			if err != nil {
				return invalid(field+".localhost_ref", "seccomp profile %s: %v", file, err)
			}
			s.Linux.Seccomp = p
			return nil
		}, nil
	}
	return oci.WithSeccompUnconfined, nil
}

// seccompProfile is the seccomp profile sc asks for, checked: nil for
// none (unconfined, or privileged), else RuntimeDefault or Localhost with
// a localhost_ref that is absolute or a local relative path. field names
// the field it came from.
func seccompProfile(sc *runtimeapi.LinuxContainerSecurityContext) (*runtimeapi.SecurityProfile, string, error) {
	sp, field, err := securityProfile(sc.GetSeccomp(), sc.GetSeccompProfilePath(), seccompField, "linux.security_context.seccomp_profile_path")
	if err != nil {
		return nil, field, err
	}
	if sp == nil || sc.GetPrivileged() {
		return nil, field, nil
	}
	switch sp.ProfileType {
	case runtimeapi.SecurityProfile_Unconfined:
		return nil, field, nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		return sp, field, nil
	case runtimeapi.SecurityProfile_Localhost:
		file := sp.LocalhostRef
		if file == "" {
			return nil, field, invalid(field+".localhost_ref", "is required for a Localhost profile")
		}
		if !filepath.IsAbs(file) && !filepath.IsLocal(file) {
			return nil, field, invalid(field+".localhost_ref", "relative path %q leaves the profile directory", file)
		}
		return sp, field, nil
	}
	return nil, field, invalid(field+".profile_type", "unknown type %d", sp.ProfileType)
}

// maxSeccompProfile caps the size of a Localhost seccomp profile; the
// largest real profiles are a few hundred KiB.
const maxSeccompProfile = 4 << 20

// statProfile checks that file is a regular file a profile can be read
// from: not missing, and no FIFO or device that would block or never end.
func statProfile(file string) (os.FileInfo, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("seccomp profile %s is not a regular file", file)
	}
	if st.Size() > maxSeccompProfile {
		return nil, fmt.Errorf("seccomp profile %s is larger than %d bytes", file, maxSeccompProfile)
	}
	return st, nil
}

// readProfile reads a Localhost seccomp profile, at most
// maxSeccompProfile bytes of a regular file.
func readProfile(file string) ([]byte, error) {
	f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("reading seccomp profile: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading seccomp profile: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("seccomp profile %s is not a regular file", file)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSeccompProfile+1))
	if err != nil {
		return nil, fmt.Errorf("reading seccomp profile: %w", err)
	}
	if len(b) > maxSeccompProfile {
		return nil, fmt.Errorf("seccomp profile %s is larger than %d bytes", file, maxSeccompProfile)
	}
	return b, nil
}

// withCaps makes sure s has the Linux and capability parts the seccomp
// profile generator reads.
func withCaps(s *oci.Spec) *oci.Spec {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	if s.Process == nil {
		s.Process = &specs.Process{}
	}
	if s.Process.Capabilities == nil {
		s.Process.Capabilities = &specs.LinuxCapabilities{}
	}
	return s
}

// WithAppArmor applies the security context's AppArmor profile (its
// apparmor field, else the deprecated apparmor_profile, where empty means
// RuntimeDefault). On a node without AppArmor, RuntimeDefault and
// Unconfined change nothing (containerd fails an explicit RuntimeDefault
// there) and a Localhost profile is an error, since it cannot be enforced.
// With AppArmor, RuntimeDefault loads and applies AppArmorDefaultProfile
// (not to privileged containers) and Localhost applies a loaded profile.
func WithAppArmor(sc *runtimeapi.LinuxContainerSecurityContext, enabled bool) oci.SpecOpts {
	return must(apparmorOpt(sc, enabled))
}

func apparmorOpt(sc *runtimeapi.LinuxContainerSecurityContext, enabled bool) (oci.SpecOpts, error) {
	sp, field, err := securityProfile(sc.GetApparmor(), sc.GetApparmorProfile(), apparmorField, "linux.security_context.apparmor_profile")
	if err != nil {
		return nil, err
	}
	if sp == nil {
		sp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	}
	switch sp.ProfileType {
	case runtimeapi.SecurityProfile_Unconfined:
		return nop, nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		if !enabled || sc.GetPrivileged() {
			return nop, nil
		}
		return apparmor.WithDefaultProfile(AppArmorDefaultProfile), nil
	case runtimeapi.SecurityProfile_Localhost:
		name := strings.TrimPrefix(sp.LocalhostRef, profileLocalhost)
		if name == "" {
			return nil, invalid(field+".localhost_ref", "is required for a Localhost profile")
		}
		if !enabled {
			return nil, invalid(field, "AppArmor profile %q cannot be applied: this node's kernel has no AppArmor", name)
		}
		return func(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
			loaded, err := apparmorLoaded(name)
			if err != nil {
				return fmt.Errorf("%s: checking AppArmor profiles: %w", field, err)
			}
			if !loaded {
				return invalid(field+".localhost_ref", "AppArmor profile %q is not loaded on this node", name)
			}
			return apparmor.WithProfile(name)(ctx, client, c, s)
		}, nil
	}
	return nil, invalid(field+".profile_type", "unknown type %d", sp.ProfileType)
}

// securityProfile returns the profile a security context asks for: the
// structured field, else the deprecated string field (nil when empty),
// and the name of the field it came from.
func securityProfile(sp *runtimeapi.SecurityProfile, deprecated, field, deprecatedField string) (*runtimeapi.SecurityProfile, string, error) {
	if sp != nil {
		if sp.ProfileType != runtimeapi.SecurityProfile_Localhost && sp.LocalhostRef != "" {
			return nil, field, invalid(field+".localhost_ref", "must only be set with profile_type Localhost")
		}
		return sp, field, nil
	}
	switch {
	case deprecated == "":
		return nil, deprecatedField, nil
	case deprecated == profileRuntimeDefault || deprecated == profileDockerDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, deprecatedField, nil
	case deprecated == profileUnconfined:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, deprecatedField, nil
	case strings.HasPrefix(deprecated, profileLocalhost):
		return &runtimeapi.SecurityProfile{
			ProfileType:  runtimeapi.SecurityProfile_Localhost,
			LocalhostRef: strings.TrimPrefix(deprecated, profileLocalhost),
		}, deprecatedField, nil
	}
	return nil, deprecatedField, invalid(deprecatedField, "unknown profile %q", deprecated)
}

// apparmorLoaded reports whether the kernel has a profile called name.
func apparmorLoaded(name string) (bool, error) {
	f, err := os.Open(apparmorProfilesFile)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), name+" (") {
			return true, nil
		}
	}
	return false, errors.Join(sc.Err())
}
