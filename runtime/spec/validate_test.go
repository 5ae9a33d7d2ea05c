package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestValidateConfig(t *testing.T) {
	profile := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	sc := func(in *Input) *runtimeapi.LinuxContainerSecurityContext { return in.Config.Linux.SecurityContext }
	res := func(in *Input) *runtimeapi.LinuxContainerResources { return in.Config.Linux.Resources }
	localhost := func(ref string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: ref}
	}
	for _, tc := range []struct {
		name   string
		change func(*Input)
		err    string
	}{
		{name: "critest-like", change: func(*Input) {}},
		{name: "existing absolute Localhost profile", change: func(in *Input) { sc(in).Seccomp = localhost(profile) }},
		{name: "relative Localhost profile: checked by Opts", change: func(in *Input) { sc(in).Seccomp = localhost("under-root.json") }},
		{
			name: "image volume: the caller gives its host path later",
			change: func(in *Input) {
				in.Config.Mounts = append(in.Config.Mounts, &runtimeapi.Mount{ContainerPath: "/models", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "models:1"}, ImageSubPath: "etc/x"})
			},
		},
		{
			name: "writable image volume",
			change: func(in *Input) {
				in.Config.Mounts = append(in.Config.Mounts, &runtimeapi.Mount{ContainerPath: "/models", Image: &runtimeapi.ImageSpec{Image: "models:1"}})
			},
			err: "mounts[1].readonly: must be true for an image volume",
		},
		{
			name: "image volume with a host path",
			change: func(in *Input) {
				in.Config.Mounts = append(in.Config.Mounts, &runtimeapi.Mount{ContainerPath: "/models", HostPath: "/srv", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "models:1"}})
			},
			err: "mounts[1].host_path: must be empty for an image volume",
		},
		{
			name: "image volume without an image name",
			change: func(in *Input) {
				in.Config.Mounts = append(in.Config.Mounts, &runtimeapi.Mount{ContainerPath: "/models", Readonly: true, Image: &runtimeapi.ImageSpec{}})
			},
			err: "mounts[1].image.image: is required",
		},
		{
			name: "image_sub_path leaving the image",
			change: func(in *Input) {
				in.Config.Mounts = append(in.Config.Mounts, &runtimeapi.Mount{ContainerPath: "/models", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "models:1"}, ImageSubPath: "../etc"})
			},
			err: "mounts[1].image_sub_path: \"../etc\" is not a relative path inside the image",
		},
		{
			name: "image volume with a bad container path",
			change: func(in *Input) {
				in.Config.Mounts = append(in.Config.Mounts, &runtimeapi.Mount{ContainerPath: "/a/../models", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "models:1"}})
			},
			err: "mounts[1].container_path",
		},
		{name: "nil config", change: func(in *Input) { in.Config = nil }, err: "config: is required"},
		{name: "negative cpu_shares", change: func(in *Input) { res(in).CpuShares = -2 }, err: "linux.resources.cpu_shares: -2 is negative"},
		{name: "cpu_quota below -1", change: func(in *Input) { res(in).CpuQuota = -2 }, err: "linux.resources.cpu_quota"},
		{name: "negative cpu_period", change: func(in *Input) { res(in).CpuPeriod = -1 }, err: "linux.resources.cpu_period"},
		{name: "negative memory", change: func(in *Input) { res(in).MemoryLimitInBytes = -1 }, err: "linux.resources.memory_limit_in_bytes"},
		{name: "oom_score_adj above 1000", change: func(in *Input) { res(in).OomScoreAdj = 1001 }, err: "linux.resources.oom_score_adj: 1001 is out of range"},
		{name: "oom_score_adj below -1000", change: func(in *Input) { res(in).OomScoreAdj = -1001 }, err: "linux.resources.oom_score_adj"},
		{
			name:   "hugepage page size",
			change: func(in *Input) { res(in).HugepageLimits = []*runtimeapi.HugepageLimit{{PageSize: "-2MB", Limit: 1}} },
			err:    "linux.resources.hugepage_limits[0].page_size",
		},
		{name: "null hugepage limit", change: func(in *Input) { res(in).HugepageLimits = []*runtimeapi.HugepageLimit{nil} }, err: "hugepage_limits[0].page_size"},
		{
			name:   "missing absolute Localhost profile",
			change: func(in *Input) { sc(in).Seccomp = localhost("/nonexistent/profile.json") },
			err:    "linux.security_context.seccomp.localhost_ref: seccomp profile: stat /nonexistent/profile.json",
		},
		{name: "Localhost profile that is a device", change: func(in *Input) { sc(in).Seccomp = localhost("/dev/zero") }, err: "not a regular file"},
		{
			name:   "unknown seccomp type",
			change: func(in *Input) { sc(in).Seccomp = &runtimeapi.SecurityProfile{ProfileType: 9} },
			err:    "linux.security_context.seccomp.profile_type: unknown type 9",
		},
		{
			name:   "unknown deprecated seccomp profile",
			change: func(in *Input) { sc(in).Seccomp, sc(in).SeccompProfilePath = nil, "strict" },
			err:    `linux.security_context.seccomp_profile_path: unknown profile "strict"`,
		},
		{
			name:   "mount container path with ..",
			change: func(in *Input) { in.Config.Mounts[0].ContainerPath = "/data/../../etc" },
			err:    `mounts[0].container_path: "/data/../../etc" has a ".." element`,
		},
		{
			name:   "mount host path with ..",
			change: func(in *Input) { in.Config.Mounts[0].HostPath = "/var/lib/kubelet/../../../etc" },
			err:    `mounts[0].host_path: "/var/lib/kubelet/../../../etc" has a ".." element`,
		},
		{name: "relative mount host path", change: func(in *Input) { in.Config.Mounts[0].HostPath = "etc" }, err: "mounts[0].host_path"},
		{name: "null mount", change: func(in *Input) { in.Config.Mounts = append(in.Config.Mounts, nil) }, err: "mounts[1]: is null"},
		{
			name: "device container path with ..",
			change: func(in *Input) {
				in.Config.Devices = []*runtimeapi.Device{{HostPath: "/dev/null", ContainerPath: "/dev/../etc/null"}}
			},
			err: "devices[0].container_path",
		},
		{name: "null device", change: func(in *Input) { in.Config.Devices = []*runtimeapi.Device{nil} }, err: "devices[0].host_path: is required"},
		{name: "env key with =", change: func(in *Input) { in.Config.Envs[0].Key = "A=B" }, err: "envs[0].key"},
		{name: "env value with NUL", change: func(in *Input) { in.Config.Envs[0].Value = []byte("a\x00b") }, err: "envs[0].value: has a NUL"},
		{name: "null env", change: func(in *Input) { in.Config.Envs = []*runtimeapi.KeyValue{nil} }, err: "envs[0].key: is empty"},
		{name: "arg with NUL", change: func(in *Input) { in.Config.Args = []string{"a\x00"} }, err: "args[0]: has a NUL"},
		{name: "relative working dir", change: func(in *Input) { in.Config.WorkingDir = "app" }, err: "working_dir"},
		{name: "unknown PID mode", change: func(in *Input) { sc(in).NamespaceOptions.Pid = 7 }, err: "namespace_options.pid: unknown mode 7"},
		{
			name:   "TARGET without target_id",
			change: func(in *Input) { sc(in).NamespaceOptions.Pid = runtimeapi.NamespaceMode_TARGET },
			err:    "namespace_options.target_id: is required",
		},
		{name: "negative uid", change: func(in *Input) { sc(in).RunAsUser.Value = -1 }, err: "run_as_user: -1 is out of range"},
		{name: "negative group", change: func(in *Input) { sc(in).SupplementalGroups = []int64{-5} }, err: "supplemental_groups[0]"},
		{name: "unknown capability", change: func(in *Input) { sc(in).Capabilities.AddCapabilities = []string{"FLY"} }, err: "add_capabilities[0]"},
		{
			name: "CDI device name not qualified",
			change: func(in *Input) {
				in.Config.CDIDevices = []*runtimeapi.CDIDevice{{Name: "vendor.com/gpu=0"}, {Name: "x"}}
			},
			err: `CDI_devices[1].name: "x" is not a CDI device name`,
		},
		{
			name:   "CDI annotation with a bad name",
			change: func(in *Input) { in.Config.Annotations = map[string]string{"cdi.k8s.io/plugin_0": "gpu0"} },
			err:    `annotations[cdi.k8s.io/plugin_0]: invalid CDI device name "gpu0"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := critestInput(t)
			tc.change(&in)
			err := validateConfig(in.Config, testHost())
			wantErr(t, err, tc.err)
			if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrNotImplemented) {
				t.Errorf("error %v is neither InvalidArgument nor NotImplemented", err)
			}
		})
	}
}

// TestValidateConfigAgreesWithOpts checks that what ValidateConfig refuses
// Opts refuses too: the checks are the same.
func TestValidateConfigAgreesWithOpts(t *testing.T) {
	for name, change := range map[string]func(*Input){
		"cpu_shares": func(in *Input) { in.Config.Linux.Resources.CpuShares = -1 },
		"oom":        func(in *Input) { in.Config.Linux.Resources.OomScoreAdj = 2000 },
		"mount":      func(in *Input) { in.Config.Mounts[0].ContainerPath = "/a/../b" },
		"seccomp":    func(in *Input) { in.Config.Linux.SecurityContext.Seccomp.ProfileType = 5 },
		"missing file": func(in *Input) {
			in.Config.Linux.SecurityContext.Seccomp.ProfileType = runtimeapi.SecurityProfile_Localhost
		},
		"env":           func(in *Input) { in.Config.Envs[0].Key = "" },
		"supplementary": func(in *Input) { in.Config.Linux.SecurityContext.SupplementalGroupsPolicy = 3 },
	} {
		t.Run(name, func(t *testing.T) {
			in := critestInput(t)
			change(&in)
			vErr := validateConfig(in.Config, testHost())
			_, oErr := buildOpts(in, testHost())
			if vErr == nil || oErr == nil || vErr.Error() != oErr.Error() {
				t.Errorf("ValidateConfig: %v\nOpts: %v", vErr, oErr)
			}
		})
	}
}

func TestCheckLogPath(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	for _, d := range []string{"app", "inside"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"escape":           outside,
		"up":               "..",
		"app/0.log":        filepath.Join(outside, "victim"),
		"app/1.log":        "../inside/1.log",
		"app/relative.log": "../../etc/passwd",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		dir, rel string
		err      string
	}{
		{dir: dir, rel: ""},
		{dir: "", rel: "app/0.log"},
		{dir: dir, rel: "app/2.log"},
		{dir: dir, rel: "new/0.log"},
		{dir: dir, rel: "app/1.log"},
		{dir: "/nonexistent/pods/x", rel: "app/0.log"},
		{dir: dir, rel: "/var/log/app.log", err: "log_path: \"/var/log/app.log\" is not a relative path"},
		{dir: dir, rel: "../app.log", err: "log_path: \"../app.log\" is not a relative path"},
		{dir: "", rel: "app/../../x.log", err: "log_path"},
		{dir: dir, rel: "escape/0.log", err: "log_path: \"escape/0.log\" leaves the pod's log_directory"},
		{dir: dir, rel: "up/0.log", err: "leaves the pod's log_directory"},
		{dir: dir, rel: "app/0.log", err: "leaves the pod's log_directory"},
		{dir: dir, rel: "app/relative.log", err: "leaves the pod's log_directory"},
		{dir: "relative/dir", rel: "app/0.log", err: "log_directory"},
		{dir: "/var/log/pods/../../etc", rel: "app/0.log", err: "log_directory"},
	} {
		err := CheckLogPath(tc.dir, tc.rel)
		if tc.err == "" && err != nil {
			t.Errorf("%s %s: %v", tc.dir, tc.rel, err)
			continue
		}
		if tc.err != "" && (err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s %s: %v, want InvalidArgument with %q", tc.dir, tc.rel, err, tc.err)
		}
	}
}

func TestCheckPodSecurity(t *testing.T) {
	for _, tc := range []struct {
		sc  *runtimeapi.LinuxSandboxSecurityContext
		err string
	}{
		{sc: nil},
		{sc: &runtimeapi.LinuxSandboxSecurityContext{Seccomp: &runtimeapi.SecurityProfile{}}},
		{
			sc:  &runtimeapi.LinuxSandboxSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: 4}},
			err: "linux.security_context.seccomp.profile_type: unknown type 4",
		},
		{
			sc: &runtimeapi.LinuxSandboxSecurityContext{Seccomp: &runtimeapi.SecurityProfile{
				ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/nonexistent.json",
			}},
			err: "linux.security_context.seccomp.localhost_ref",
		},
		{sc: &runtimeapi.LinuxSandboxSecurityContext{SeccompProfilePath: "localhost/"}, err: "seccomp_profile_path.localhost_ref: is required"},
	} {
		err := CheckPodSecurity(tc.sc)
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%v: %v, want %q", tc.sc, err, tc.err)
		}
	}
}
