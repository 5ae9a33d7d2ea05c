package spec

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	cns "github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// newSpec is containerd's default spec, what WithNewSpec starts from.
func newSpec(t *testing.T) *oci.Spec {
	t.Helper()
	s, err := oci.GenerateSpec(testContext(), nil, &containers.Container{ID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testContext() context.Context { return cns.WithNamespace(context.Background(), "k8s.io") }

// apply applies opts to s as WithNewSpec would.
func apply(s *oci.Spec, opts ...oci.SpecOpts) error {
	return oci.ApplyOpts(testContext(), nil, &containers.Container{ID: "c1"}, s, opts...)
}

// wantErr checks err against a wanted substring ("" = no error) and, for an
// error, that it is InvalidArgument unless another kind is named.
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func TestWithBase(t *testing.T) {
	s := newSpec(t)
	if err := apply(s, WithBase); err != nil {
		t.Fatal(err)
	}
	if s.Process.Rlimits != nil || s.Process.NoNewPrivileges || s.Linux.Seccomp != nil {
		t.Errorf("defaults left: rlimits %v nnp %v seccomp %v", s.Process.Rlimits, s.Process.NoNewPrivileges, s.Linux.Seccomp)
	}
	for _, m := range s.Mounts {
		if m.Destination == "/run" {
			t.Error("/run tmpfs left")
		}
	}
}

func TestWithProcess(t *testing.T) {
	image := ocispec.ImageConfig{
		Entrypoint: []string{"/entry"}, Cmd: []string{"cmd1", "cmd2"},
		Env: []string{"PATH=/image/bin", "A=image", "B=image"}, WorkingDir: "/image",
	}
	kv := func(k, v string) *runtimeapi.KeyValue { return &runtimeapi.KeyValue{Key: k, Value: []byte(v)} }
	for _, tc := range []struct {
		name     string
		config   *runtimeapi.ContainerConfig
		image    ocispec.ImageConfig
		hostname string
		args     []string
		env      []string
		cwd      string
		terminal bool
		err      string
	}{
		{
			name: "image entrypoint and cmd", config: &runtimeapi.ContainerConfig{}, image: image, hostname: "pod",
			args: []string{"/entry", "cmd1", "cmd2"}, cwd: "/image",
			env: []string{"PATH=/image/bin", "HOSTNAME=pod", "A=image", "B=image"},
		},
		{
			name: "args replace cmd", config: &runtimeapi.ContainerConfig{Args: []string{"a1"}}, image: image, hostname: "pod",
			args: []string{"/entry", "a1"}, cwd: "/image",
		},
		{
			name: "command replaces entrypoint and cmd", config: &runtimeapi.ContainerConfig{Command: []string{"/bin/sh"}}, image: image, hostname: "pod",
			args: []string{"/bin/sh"}, cwd: "/image",
		},
		{
			name: "command and args", config: &runtimeapi.ContainerConfig{Command: []string{"/bin/sh"}, Args: []string{"-c", "true"}}, image: image, hostname: "pod",
			args: []string{"/bin/sh", "-c", "true"},
		},
		{
			name:   "entrypoint reset to empty string",
			config: &runtimeapi.ContainerConfig{}, image: ocispec.ImageConfig{Entrypoint: []string{""}, Cmd: []string{"/cmd"}}, hostname: "pod",
			args: []string{"/cmd"}, cwd: "/",
		},
		{
			name: "nothing to run", config: &runtimeapi.ContainerConfig{}, hostname: "pod",
			err: "command: none given",
		},
		{
			name: "cri env overrides image env, tty adds TERM",
			config: &runtimeapi.ContainerConfig{
				Command: []string{"x"}, Tty: true, Stdin: true, StdinOnce: true, WorkingDir: "/work",
				Envs: []*runtimeapi.KeyValue{kv("B", "cri"), kv("C", "cri=with=equals"), kv("HOSTNAME", "mine")},
			},
			image: image, hostname: "pod", cwd: "/work", terminal: true,
			env: []string{"PATH=/image/bin", "TERM=xterm", "HOSTNAME=mine", "A=image", "B=cri", "C=cri=with=equals"},
		},
		{
			name:   "relative image workdir is taken from /",
			config: &runtimeapi.ContainerConfig{Command: []string{"x"}}, image: ocispec.ImageConfig{WorkingDir: "app"}, hostname: "pod", cwd: "/app",
			env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=pod"},
		},
		{
			name:   "relative CRI working dir",
			config: &runtimeapi.ContainerConfig{Command: []string{"x"}, WorkingDir: "work"}, hostname: "pod",
			err: "working_dir: \"work\" is not an absolute path",
		},
		{
			name:   "empty env key",
			config: &runtimeapi.ContainerConfig{Command: []string{"x"}, Envs: []*runtimeapi.KeyValue{kv("", "v")}}, hostname: "pod",
			err: "envs[0].key: is empty",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t)
			err := apply(s, WithProcess(tc.config, tc.image, tc.hostname))
			wantErr(t, err, tc.err)
			if err != nil {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("error %v is not InvalidArgument", err)
				}
				return
			}
			p := s.Process
			if tc.args != nil && !slices.Equal(p.Args, tc.args) {
				t.Errorf("args %q, want %q", p.Args, tc.args)
			}
			if tc.env != nil && !slices.Equal(p.Env, tc.env) {
				t.Errorf("env %q, want %q", p.Env, tc.env)
			}
			if tc.cwd != "" && p.Cwd != tc.cwd {
				t.Errorf("cwd %q, want %q", p.Cwd, tc.cwd)
			}
			if p.Terminal != tc.terminal {
				t.Errorf("terminal %v, want %v", p.Terminal, tc.terminal)
			}
		})
	}
}
