package spec

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	hostnameEnv = "HOSTNAME"
)

// WithBase turns containerd's default spec into the base of a CRI
// container, as containerd's CRI does: no /run tmpfs (images may ship
// /run), no default rlimits (the container inherits the runtime's), no
// AppArmor or seccomp profile until WithSeccomp and WithAppArmor, and new
// privileges allowed until WithNoNewPrivileges says otherwise.
func WithBase(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
	if err := oci.WithoutRunMount(ctx, client, c, s); err != nil {
		return err
	}
	if s.Process == nil {
		s.Process = &specs.Process{}
	}
	s.Process.Rlimits = nil
	s.Process.ApparmorProfile = ""
	s.Process.NoNewPrivileges = false
	if s.Linux != nil {
		s.Linux.Seccomp = nil
	}
	return nil
}

// WithProcess sets the container's process from its CRI config over its
// image's config:
//   - args by the Kubernetes rules: command replaces the image's entrypoint
//     (and drops its cmd); args replace the image's cmd; neither given runs
//     entrypoint + cmd;
//   - env: a default PATH, TERM=xterm with a tty, HOSTNAME (the pod's
//     hostname, else the node's), then the image's env, then the CRI's, a
//     later value replacing an earlier one of the same name;
//   - working dir: the CRI's, else the image's, else /;
//   - terminal: the CRI's tty. stdin and stdin_once change nothing in the
//     spec; they are the caller's I/O.
func WithProcess(config *runtimeapi.ContainerConfig, image ocispec.ImageConfig, hostname string) oci.SpecOpts {
	return must(processOpt(config, image, hostname))
}

func processOpt(config *runtimeapi.ContainerConfig, image ocispec.ImageConfig, hostname string) (oci.SpecOpts, error) {
	args, err := processArgs(config, image)
	if err != nil {
		return nil, err
	}
	cwd := "/"
	if wd := config.GetWorkingDir(); wd != "" {
		if !path.IsAbs(wd) || strings.ContainsRune(wd, 0) {
			return nil, invalid("working_dir", "%q is not an absolute path", wd)
		}
		cwd = wd
	} else if image.WorkingDir != "" {
		// Docker accepts relative WORKDIRs and resolves them against /.
		cwd = path.Join("/", image.WorkingDir)
	}
	if hostname == "" {
		if hostname, err = os.Hostname(); err != nil {
			return nil, err
		}
	}
	env := []string{defaultPath}
	if config.GetTty() {
		env = append(env, "TERM=xterm")
	}
	env = append(env, hostnameEnv+"="+hostname)
	env = append(env, image.Env...)
	for i, e := range config.GetEnvs() {
		switch k := e.GetKey(); {
		case k == "":
			return nil, invalid(fmt.Sprintf("envs[%d].key", i), "is empty")
		case strings.ContainsAny(k, "=\x00"):
			return nil, invalid(fmt.Sprintf("envs[%d].key", i), "%q has an = or a NUL", k)
		case bytes.IndexByte(e.GetValue(), 0) >= 0:
			return nil, invalid(fmt.Sprintf("envs[%d].value", i), "has a NUL")
		}
		env = append(env, e.GetKey()+"="+string(e.GetValue()))
	}
	tty := config.GetTty()
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		s.Process.Args = args
		s.Process.CommandLine = ""
		s.Process.Cwd = cwd
		s.Process.Terminal = tty
		s.Process.Env = mergeEnv(s.Process.Env, env)
		return nil
	}, nil
}

// processArgs applies the Kubernetes command and args rules.
func processArgs(config *runtimeapi.ContainerConfig, image ocispec.ImageConfig) ([]string, error) {
	command, args := config.GetCommand(), config.GetArgs()
	for field, list := range map[string][]string{"command": command, "args": args} {
		for i, a := range list {
			if strings.ContainsRune(a, 0) {
				return nil, invalid(fmt.Sprintf("%s[%d]", field, i), "has a NUL")
			}
		}
	}
	if len(command) == 0 {
		if len(args) == 0 {
			args = image.Cmd
		}
		// An entrypoint of [""] is how Dockerfiles reset it.
		if len(image.Entrypoint) != 1 || image.Entrypoint[0] != "" {
			command = image.Entrypoint
		}
	}
	all := append(append([]string{}, command...), args...)
	if len(all) == 0 {
		return nil, invalid("command", "none given, and the image has no entrypoint or cmd")
	}
	return all, nil
}

// mergeEnv appends each NAME=value of add to env, replacing an earlier
// value of the same name in place.
func mergeEnv(env, add []string) []string {
	out := slices.Clone(env)
	at := make(map[string]int, len(env)+len(add))
	for i, e := range out {
		k, _, _ := strings.Cut(e, "=")
		at[k] = i
	}
	for _, e := range add {
		k, _, _ := strings.Cut(e, "=")
		if i, ok := at[k]; ok {
			out[i] = e
			continue
		}
		at[k] = len(out)
		out = append(out, e)
	}
	return out
}
