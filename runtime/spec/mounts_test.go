package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crierrors "k8s.io/cri-api/pkg/errors"
)

func TestPodMounts(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{pod.HostnameFile, pod.ResolvConfFile} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	withHosts := t.TempDir()
	for _, f := range []string{pod.HostnameFile, pod.ResolvConfFile, HostsFile} {
		if err := os.WriteFile(filepath.Join(withHosts, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shm := t.TempDir()
	podNS := namespaces.Pinned{namespaces.IPC: "/ns/ipc"}
	type m = string // "container<-host ro|rw"
	for _, tc := range []struct {
		name   string
		pod    pod.Sandbox
		config *runtimeapi.ContainerConfig
		want   []m
	}{
		{
			name: "pod files and pod shm", pod: pod.Sandbox{Dir: dir, ShmPath: shm, Namespaces: podNS},
			config: &runtimeapi.ContainerConfig{},
			want:   []m{"/etc/hostname<-" + dir + "/hostname rw", "/etc/resolv.conf<-" + dir + "/resolv.conf rw", "/dev/shm<-" + shm + " rw"},
		},
		{
			name: "hosts file when the pod has one", pod: pod.Sandbox{Dir: withHosts, ShmPath: shm, Namespaces: podNS},
			config: &runtimeapi.ContainerConfig{},
			want: []m{"/etc/hostname<-" + withHosts + "/hostname rw", "/etc/hosts<-" + withHosts + "/hosts rw",
				"/etc/resolv.conf<-" + withHosts + "/resolv.conf rw", "/dev/shm<-" + shm + " rw"},
		},
		{
			name: "read-only rootfs makes pod files read-only", pod: pod.Sandbox{Dir: dir, ShmPath: shm, Namespaces: podNS},
			config: &runtimeapi.ContainerConfig{Linux: &runtimeapi.LinuxContainerConfig{
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{ReadonlyRootfs: true}}},
			want: []m{"/etc/hostname<-" + dir + "/hostname ro", "/etc/resolv.conf<-" + dir + "/resolv.conf ro", "/dev/shm<-" + shm + " rw"},
		},
		{
			name: "CRI mounts win", pod: pod.Sandbox{Dir: dir, ShmPath: shm, Namespaces: podNS},
			config: &runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{
				{ContainerPath: "/etc/resolv.conf/", HostPath: "/x"}, {ContainerPath: "/dev/shm", HostPath: "/y"}}},
			want: []m{"/etc/hostname<-" + dir + "/hostname rw"},
		},
		{
			name: "host IPC shares the node's /dev/shm", pod: pod.Sandbox{Dir: dir},
			config: &runtimeapi.ContainerConfig{},
			want:   []m{"/etc/hostname<-" + dir + "/hostname rw", "/etc/resolv.conf<-" + dir + "/resolv.conf rw", "/dev/shm<-/dev/shm rw"},
		},
		{
			name: "missing files are left out", pod: pod.Sandbox{Dir: filepath.Join(dir, "missing"), Namespaces: podNS},
			config: &runtimeapi.ContainerConfig{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []m
			for _, mnt := range PodMounts(tc.pod, tc.config) {
				mode := "rw"
				if mnt.Readonly {
					mode = "ro"
				}
				got = append(got, mnt.ContainerPath+"<-"+mnt.HostPath+" "+mode)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("mounts\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// fakeLookup answers every path with a mount at /fake with the given
// propagation tags.
func fakeLookup(optional string) lookupFunc {
	return func(string) (*mountinfo.Info, error) {
		return &mountinfo.Info{Mountpoint: "/fake", Optional: optional, VFSOptions: "rw,nsdelegate,memory_recursiveprot"}, nil
	}
}

func TestWithMounts(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(src, link); err != nil {
		t.Fatal(err)
	}
	host := Host{RecursiveReadOnly: true}
	mnt := func(container, host string) *runtimeapi.Mount {
		return &runtimeapi.Mount{ContainerPath: container, HostPath: host}
	}
	for _, tc := range []struct {
		name        string
		mounts      []*runtimeapi.Mount
		extra       []*runtimeapi.Mount
		oldKernel   bool
		optional    string
		want        []string // "dest src opts" of the bind mounts, in order
		propagation string
		gone        []string // default destinations that must be gone
		err         string
		kind        error
	}{
		{name: "read-write", mounts: []*runtimeapi.Mount{mnt("/data", src)}, want: []string{"/data " + src + " rbind,rprivate,rw"}},
		{
			name:   "read-only and bind flags",
			mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, Readonly: true, MountOptions: []string{"noexec", "nosuid"}}},
			want:   []string{"/data " + src + " rbind,rprivate,ro,noexec,nosuid"},
		},
		{
			name:   "recursive read-only",
			mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, Readonly: true, RecursiveReadOnly: true, SelinuxRelabel: true}},
			want:   []string{"/data " + src + " rbind,rprivate,rro"},
		},
		{
			name: "recursive read-only on an old kernel", oldKernel: true,
			mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, Readonly: true, RecursiveReadOnly: true}},
			err:    "mounts[0].recursive_read_only: RROUnsupported: this kernel cannot", kind: crierrors.ErrRROUnsupported,
		},
		{
			name:   "recursive read-only needs readonly",
			mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, RecursiveReadOnly: true}},
			err:    "mounts[0].recursive_read_only: needs readonly",
		},
		{
			name: "recursive read-only needs private propagation",
			mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, Readonly: true, RecursiveReadOnly: true,
				Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}},
			err: "needs private propagation, not PROPAGATION_HOST_TO_CONTAINER",
		},
		{
			name:     "bidirectional on a shared mount",
			mounts:   []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}},
			optional: "shared:7", want: []string{"/data " + src + " rbind,rshared,rw"}, propagation: "rshared",
		},
		{
			name:     "bidirectional on a slave mount",
			mounts:   []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}},
			optional: "master:7",
			err:      "mount /data: propagation PROPAGATION_BIDIRECTIONAL needs host path \"" + src + "\" on a shared mount, but \"/fake\" is private",
			kind:     errdefs.ErrFailedPrecondition,
		},
		{
			name:     "host to container on a slave mount",
			mounts:   []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}},
			optional: "master:7", want: []string{"/data " + src + " rbind,rslave,rw"}, propagation: "rslave",
		},
		{
			name:   "host to container on a private mount",
			mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}},
			err:    "on a shared or slave mount", kind: errdefs.ErrFailedPrecondition,
		},
		{
			name: "shared wins over slave for the rootfs",
			mounts: []*runtimeapi.Mount{
				{ContainerPath: "/a", HostPath: src, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
				{ContainerPath: "/b", HostPath: src, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			},
			optional: "shared:1", propagation: "rshared",
			want: []string{"/a " + src + " rbind,rshared,rw", "/b " + src + " rbind,rslave,rw"},
		},
		{
			name:   "missing host path is created, symlinks resolved",
			mounts: []*runtimeapi.Mount{mnt("/new", filepath.Join(dir, "new")), mnt("/link", link)},
			want:   []string{"/new " + filepath.Join(dir, "new") + " rbind,rprivate,rw", "/link " + src + " rbind,rprivate,rw"},
		},
		{
			name:   "shallow mounts first",
			mounts: []*runtimeapi.Mount{mnt("/a/b/c", src), mnt("/a", src), mnt("/a/b", src)},
			want:   []string{"/a " + src + " rbind,rprivate,rw", "/a/b " + src + " rbind,rprivate,rw", "/a/b/c " + src + " rbind,rprivate,rw"},
		},
		{
			name:   "CRI mounts win over extra ones and replace defaults",
			mounts: []*runtimeapi.Mount{mnt("/dev/shm", src)},
			extra:  []*runtimeapi.Mount{mnt("/dev/shm", "/elsewhere"), mnt("/etc/hostname", src)},
			want:   []string{"/dev/shm " + src + " rbind,rprivate,rw", "/etc/hostname " + src + " rbind,rprivate,rw"},
			gone:   []string{"/dev/shm:tmpfs"},
		},
		{
			name:   "a /dev mount replaces everything under /dev",
			mounts: []*runtimeapi.Mount{mnt("/dev", src)},
			want:   []string{"/dev " + src + " rbind,rprivate,rw"},
			gone:   []string{"/dev:tmpfs", "/dev/pts:devpts", "/dev/shm:tmpfs", "/dev/mqueue:mqueue"},
		},
		{
			name:   "a cgroup mount replaces the default one",
			mounts: []*runtimeapi.Mount{mnt("/sys/fs/cgroup", src)},
			want:   []string{"/sys/fs/cgroup " + src + " rbind,rprivate,rw"},
			gone:   []string{"/sys/fs/cgroup:cgroup"},
		},
		{name: "relative container path", mounts: []*runtimeapi.Mount{mnt("data", src)}, err: "mounts[0].container_path: \"data\" is not an absolute path"},
		{name: "no host path", mounts: []*runtimeapi.Mount{mnt("/data", "")}, err: "mounts[0].host_path: is required"},
		{name: "relative host path", mounts: []*runtimeapi.Mount{mnt("/data", "data")}, err: "mounts[0].host_path: \"data\" is not an absolute path"},
		{
			name:   "unmounted image volume",
			mounts: []*runtimeapi.Mount{{ContainerPath: "/data", Image: &runtimeapi.ImageSpec{Image: "busybox"}}},
			err:    "mounts[0].image: image volume \"busybox\" must be mounted by the caller", kind: errdefs.ErrNotImplemented,
		},
		{
			name:   "image volume given as host path is read-only",
			mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, Readonly: true, Image: &runtimeapi.ImageSpec{Image: "busybox"}}},
			want:   []string{"/data " + src + " rbind,rprivate,ro"},
		},
		{
			name:   "writable image volume",
			mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, Image: &runtimeapi.ImageSpec{Image: "busybox"}}},
			err:    "mounts[0].readonly: must be true for an image volume",
		},
		{
			name:   "image_sub_path without an image",
			mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, ImageSubPath: "etc"}},
			err:    "mounts[0].image_sub_path: is only for image volumes",
		},
		{
			name:   "ID-mapped mount without GID mappings",
			mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, UidMappings: []*runtimeapi.IDMapping{{HostId: 1, Length: 1}}}},
			err:    "mounts[0].uidMappings: an ID-mapped mount needs both",
		},
		{
			name: "ID-mapped mount with an empty mapping",
			mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src,
				UidMappings: []*runtimeapi.IDMapping{{HostId: 1, Length: 1}}, GidMappings: []*runtimeapi.IDMapping{{HostId: 1}}}},
			err: "mounts[0].gidMappings[0]: is null or empty",
		},
		{name: "duplicate", mounts: []*runtimeapi.Mount{mnt("/d", src), mnt("/d/", src)}, err: "mounts[1].container_path: \"/d\" is also mounts[0]'s"},
		{
			name:   "mount option that is not a bind flag",
			mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, MountOptions: []string{"nodev", "rw"}}},
			err:    "mounts[0].mount_options[1]: \"rw\" is not a bind mount flag",
		},
		{name: "unknown propagation", mounts: []*runtimeapi.Mount{{ContainerPath: "/d", HostPath: src, Propagation: 9}}, err: "mounts[0].propagation: unknown mode 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := host
			h.RecursiveReadOnly = !tc.oldKernel
			s := newSpec(t)
			opt, err := mountsOpt(tc.mounts, tc.extra, h, fakeLookup(tc.optional))
			if err == nil {
				err = apply(s, opt)
			}
			wantErr(t, err, tc.err)
			if err != nil {
				kind := tc.kind
				if kind == nil {
					kind = errdefs.ErrInvalidArgument
				}
				if !errors.Is(err, kind) {
					t.Errorf("error %v is not %v", err, kind)
				}
				return
			}
			var binds []string
			all := map[string]bool{}
			for _, m := range s.Mounts {
				all[m.Destination+":"+m.Type] = true
				if m.Type == "bind" {
					binds = append(binds, m.Destination+" "+m.Source+" "+strings.Join(m.Options, ","))
				}
			}
			if !slices.Equal(binds, tc.want) {
				t.Errorf("bind mounts\n%q\nwant\n%q", binds, tc.want)
			}
			if s.Linux.RootfsPropagation != tc.propagation {
				t.Errorf("rootfs propagation %q, want %q", s.Linux.RootfsPropagation, tc.propagation)
			}
			for _, g := range tc.gone {
				if all[g] {
					t.Errorf("default mount %s still there", g)
				}
			}
			if !slices.Contains(tc.gone, "/sys/fs/cgroup:cgroup") && !all["/sys/fs/cgroup:cgroup"] {
				t.Error("no cgroup mount")
			}
			if _, err := os.Stat(filepath.Join(dir, "new")); tc.name == "missing host path is created, symlinks resolved" && err != nil {
				t.Errorf("missing host path not created: %v", err)
			}
		})
	}
}

func TestCgroupMount(t *testing.T) {
	for _, tc := range []struct {
		name     string
		host     Host
		cgroupNS bool
		want     string
	}{
		{name: "v1", want: "nosuid,noexec,nodev,relatime,ro"},
		{name: "v2 own namespace", host: Host{CgroupV2: true}, cgroupNS: true, want: "nosuid,noexec,nodev,relatime,ro"},
		{name: "v2 node namespace keeps the node's options", host: Host{CgroupV2: true}, want: "nosuid,noexec,nodev,relatime,ro,nsdelegate,memory_recursiveprot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t)
			s.Linux.Namespaces = nil
			if tc.cgroupNS {
				s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.CgroupNamespace}}
			}
			m := cgroupMount(s, tc.host, fakeLookup(""))
			if got := strings.Join(m.Options, ","); got != tc.want || m.Type != "cgroup" || m.Destination != "/sys/fs/cgroup" {
				t.Errorf("cgroup mount %+v, want options %s", m, tc.want)
			}
		})
	}
}

// TestPropagationOnThisNode checks propagation against the real mount
// table: a directory on a private mount refuses rshared; the same
// directory bind-mounted onto itself and made shared (what critest does)
// accepts it.
func TestPropagationOnThisNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make mounts")
	}
	dir := t.TempDir()
	shared := &runtimeapi.Mount{ContainerPath: "/data", HostPath: dir, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}
	if info, err := lookupMount(dir); err != nil {
		t.Fatal(err)
	} else if strings.Contains(info.Optional, "shared:") {
		t.Skipf("%s is already on a shared mount (%s)", dir, info.Mountpoint)
	}
	err := apply(newSpec(t), WithMounts([]*runtimeapi.Mount{shared}, nil, Host{}))
	wantErr(t, err, "is private (make it shared with `mount --make-rshared")
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("error %v is not FailedPrecondition", err)
	}

	if err := unix.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Error(err)
		}
	})
	if err := unix.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		t.Fatal(err)
	}
	s := newSpec(t)
	if err := apply(s, WithMounts([]*runtimeapi.Mount{shared}, nil, Host{})); err != nil {
		t.Fatal(err)
	}
	if s.Linux.RootfsPropagation != "rshared" {
		t.Errorf("rootfs propagation %q, want rshared", s.Linux.RootfsPropagation)
	}
}
