package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/slipway-dev/slipway/runtime/pod"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ValidateConfig checks everything of a container config that needs
// neither its pod, its image nor its rootfs, against this node's facts
// (DetectHost), so that a caller can refuse a bad config before it creates
// anything. The checks are the ones Opts makes (the same option
// constructors run; for namespaces, the pod-independent part), so a config
// ValidateConfig accepts fails Opts only for reasons of its pod, image or
// files: whether the pod allows its namespace modes, a relative Localhost
// seccomp profile (resolved under Input.SeccompRoot), the image's command
// and user, the log path's symlinks, and an image volume's host path,
// which the caller fills in after validation. Errors are those of Opts.
func ValidateConfig(c *runtimeapi.ContainerConfig) error {
	return validateConfig(c, DetectHost())
}

func validateConfig(c *runtimeapi.ContainerConfig, h Host) error {
	if c == nil {
		return invalid("config", "is required")
	}
	if _, err := CDIDeviceNames(nil, c); err != nil {
		return err
	}
	sc := c.GetLinux().GetSecurityContext()
	// A stand-in image: the checks that need the real one run in Opts.
	anyImage := ocispec.ImageConfig{Cmd: []string{"sh"}}
	checks := []func() error{
		func() error { _, err := processOpt(c, anyImage, "validating"); return err },
		func() error { return checkNamespaceModes(sc.GetNamespaceOptions()) },
		func() error { return checkImageVolumes(c.GetMounts()) },
		func() error {
			_, err := mountsOpt(withImageVolumeStandIns(c.GetMounts()), nil, h, lookupMount)
			return err
		},
		func() error { _, err := devicesOpt(c.GetDevices()); return err },
		func() error { _, err := capabilitiesOpt(sc.GetCapabilities(), h.Capabilities); return err },
		func() error { _, err := userOpt(sc, "", nil); return err },
		func() error { _, err := resourcesOpt(c.GetLinux().GetResources(), h); return err },
		func() error { _, err := oomScoreAdjOpt(c.GetLinux().GetResources()); return err },
		func() error { return checkSeccomp(sc) },
		func() error { _, err := apparmorOpt(sc, h.AppArmor); return err },
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// checkNamespaceModes makes the checks of namespacesOpt that need no pod:
// known modes, and a target for TARGET. Whether the pod allows the mode
// (a shared PID namespace, a user namespace) is for Opts.
func checkNamespaceModes(ns *runtimeapi.NamespaceOption) error {
	switch mode := ns.GetPid(); mode {
	case runtimeapi.NamespaceMode_CONTAINER, runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_NODE:
	case runtimeapi.NamespaceMode_TARGET:
		if ns.GetTargetId() == "" {
			return invalid("linux.security_context.namespace_options.target_id", "is required with PID mode TARGET")
		}
	default:
		return invalid(pidNamespaceField, "unknown mode %d", mode)
	}
	_, _, err := pod.IDMappings(ns.GetUsernsOptions())
	return err
}

// checkImageVolumes checks what is particular to image volumes as kubelet
// sends them, before the caller mounts them: an image named, no host path
// (the runtime picks it), and a relative image_sub_path that stays in the
// image. Whether the image and the sub path exist is for the caller.
func checkImageVolumes(mounts []*runtimeapi.Mount) error {
	for i, m := range mounts {
		if m.GetImage() == nil {
			continue
		}
		field := func(name string) string { return fmt.Sprintf("mounts[%d].%s", i, name) }
		switch sub := m.ImageSubPath; {
		case m.Image.GetImage() == "":
			return invalid(field("image.image"), "is required for an image volume")
		case m.HostPath != "":
			return invalid(field("host_path"), "must be empty for an image volume (the runtime mounts the image)")
		case sub != "" && (strings.ContainsRune(sub, 0) || !filepath.IsLocal(sub)):
			return invalid(field("image_sub_path"), "%q is not a relative path inside the image", sub)
		}
	}
	return nil
}

// withImageVolumeStandIns is mounts with a stand-in host path for each
// image volume that has none yet: the caller mounts image volumes (after
// validation) and gives their host paths to Opts, which checks them.
func withImageVolumeStandIns(mounts []*runtimeapi.Mount) []*runtimeapi.Mount {
	out := make([]*runtimeapi.Mount, len(mounts))
	for i, m := range mounts {
		out[i] = m
		if m != nil && m.HostPath == "" && m.Image != nil {
			standIn := proto.CloneOf(m)
			standIn.HostPath = "/image-volume"
			out[i] = standIn
		}
	}
	return out
}

// checkSeccomp makes seccompOpt's checks, a relative Localhost profile's
// existence excepted: its directory is known to Opts only.
func checkSeccomp(sc *runtimeapi.LinuxContainerSecurityContext) error {
	sp, field, err := seccompProfile(sc)
	// GetProfileType of nil is RuntimeDefault, the zero value.
	if err != nil || sp == nil || sp.ProfileType != runtimeapi.SecurityProfile_Localhost || !filepath.IsAbs(sp.LocalhostRef) {
		return err
	}
	if _, err := statProfile(sp.LocalhostRef); err != nil {
		return invalid(field+".localhost_ref", "%v", err)
	}
	return nil
}

// CheckPodSecurity checks the seccomp profile of a pod's security
// context as ValidateConfig checks a container's; errors name fields from
// the PodSandboxConfig ("linux.security_context.seccomp.profile_type").
func CheckPodSecurity(sc *runtimeapi.LinuxSandboxSecurityContext) error {
	return checkSeccomp(&runtimeapi.LinuxContainerSecurityContext{
		Seccomp: sc.GetSeccomp(), SeccompProfilePath: sc.GetSeccompProfilePath(), Privileged: sc.GetPrivileged(),
	})
}

// CheckLogPath checks a container's log path (relative to its pod's log
// directory; either may be empty for no log) as kubelet sends them: dir
// absolute, rel relative, and rel staying inside dir, by its "..":
// elements and by the symlinks that exist on the way. The logger opens the
// file later; a symlink made in between is for it to refuse.
func CheckLogPath(dir, rel string) error {
	if rel == "" {
		return nil
	}
	if strings.ContainsRune(rel, 0) || !filepath.IsLocal(rel) {
		return invalid("log_path", "%q is not a relative path inside the pod's log_directory", rel)
	}
	if dir == "" {
		return nil
	}
	if err := checkAbsPath("sandbox_config.log_directory", dir); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("log_path: opening the pod's log directory: %w", err)
	}
	defer root.Close()
	// os.Root refuses to follow a symlink out of dir. A missing file (or
	// directory on the way) is for the logger to create.
	if _, err := root.Stat(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return invalid("log_path", "%q leaves the pod's log_directory %s or cannot be a file: %v", rel, dir, err)
	}
	return nil
}
