package spec

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func usernsOpts(hostID uint32) *runtimeapi.UserNamespace {
	m := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: hostID, Length: 65536}}
	return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: m, Gids: m}
}

// usernsPod is a pod with its own user namespace pinned at /run/ns/user.
func usernsPod(hostNetwork bool) pod.Sandbox {
	p := testPod(runtimeapi.NamespaceMode_CONTAINER)
	p.Config.Linux.SecurityContext.NamespaceOptions.UsernsOptions = usernsOpts(65536)
	p.Namespaces[namespaces.User] = "/run/ns/user"
	if hostNetwork {
		p.Config.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
		delete(p.Namespaces, namespaces.Net)
	}
	return p
}

func TestWithUserNamespace(t *testing.T) {
	wantMap := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 65536, Size: 65536}}
	unpinned := usernsPod(false)
	delete(unpinned.Namespaces, namespaces.User)
	for _, tc := range []struct {
		name    string
		pod     pod.Sandbox
		ns      *runtimeapi.NamespaceOption
		path    string // "" = no user namespace in the spec
		sysBind bool
		err     string
	}{
		{name: "node's", pod: testPod(runtimeapi.NamespaceMode_CONTAINER), ns: &runtimeapi.NamespaceOption{}},
		{name: "node's, asked", pod: testPod(runtimeapi.NamespaceMode_CONTAINER),
			ns: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}}},
		{name: "inherits the pod's", pod: usernsPod(false), ns: &runtimeapi.NamespaceOption{}, path: "/run/ns/user"},
		{name: "the pod's, asked", pod: usernsPod(false), ns: &runtimeapi.NamespaceOption{UsernsOptions: usernsOpts(65536)}, path: "/run/ns/user"},
		{name: "host network binds /sys", pod: usernsPod(true), ns: &runtimeapi.NamespaceOption{}, path: "/run/ns/user", sysBind: true},
		{name: "another mapping", pod: usernsPod(false), ns: &runtimeapi.NamespaceOption{UsernsOptions: usernsOpts(2 * 65536)},
			err: "userns_options: differs from the pod's user namespace (uids 0:65536:65536, gids 0:65536:65536)"},
		{name: "node's in a pod with one", pod: usernsPod(false),
			ns:  &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}},
			err: "userns_options: differs from the pod's user namespace"},
		{name: "one in a pod without", pod: testPod(runtimeapi.NamespaceMode_CONTAINER), ns: &runtimeapi.NamespaceOption{UsernsOptions: usernsOpts(65536)},
			err: "differs from the pod's user namespace (the node's)"},
		{name: "node's PID namespace", pod: usernsPod(false), ns: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE},
			err: "namespace_options.pid: NODE is not allowed in a pod with its own user namespace"},
		{name: "pod without a pin", pod: unpinned, ns: &runtimeapi.NamespaceOption{}, err: "has no pinned user namespace"},
		{name: "CONTAINER", pod: usernsPod(false), ns: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}},
			err: "userns_options.mode: CONTAINER is not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t)
			err := apply(s, WithUserNamespace(tc.pod, tc.ns))
			wantErr(t, err, tc.err)
			if err != nil {
				return
			}
			i := slices.IndexFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace })
			if tc.path == "" {
				if i >= 0 || s.Linux.UIDMappings != nil {
					t.Fatalf("user namespace %v, mappings %v; want the node's", s.Linux.Namespaces, s.Linux.UIDMappings)
				}
				return
			}
			if i < 0 || s.Linux.Namespaces[i].Path != tc.path {
				t.Fatalf("namespaces %v, want user at %s", s.Linux.Namespaces, tc.path)
			}
			if !slices.Equal(s.Linux.UIDMappings, wantMap) || !slices.Equal(s.Linux.GIDMappings, wantMap) {
				t.Errorf("mappings %v %v, want %v", s.Linux.UIDMappings, s.Linux.GIDMappings, wantMap)
			}
			j := slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/sys" })
			if got := j >= 0 && s.Mounts[j].Type == "bind"; got != tc.sysBind {
				t.Errorf("/sys mount %+v, want a bind: %v", s.Mounts[j], tc.sysBind)
			}
		})
	}
}

func TestPodMountsUserNamespace(t *testing.T) {
	p := usernsPod(false)
	p.Dir = t.TempDir()
	p.ShmPath = t.TempDir()
	writeFiles(t, p.Dir, map[string]string{pod.HostnameFile: "web\n", pod.ResolvConfFile: "nameserver 10.0.0.1\n"})
	mounts := PodMounts(p, &runtimeapi.ContainerConfig{})
	if len(mounts) != 3 {
		t.Fatalf("mounts %v, want hostname, resolv.conf and /dev/shm", mounts)
	}
	for _, m := range mounts {
		mapped := len(m.UidMappings) == 1 && len(m.GidMappings) == 1 && m.UidMappings[0].HostId == 65536
		if want := m.ContainerPath != devShm; mapped != want {
			t.Errorf("%s: ID-mapped %v, want %v", m.ContainerPath, mapped, want)
		}
	}
	s := newSpec(t)
	if err := apply(s, WithMounts(nil, mounts, Host{})); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == etcHostname })
	if i < 0 || len(s.Mounts[i].UIDMappings) != 1 || s.Mounts[i].UIDMappings[0].HostID != 65536 || len(s.Mounts[i].GIDMappings) != 1 {
		t.Errorf("OCI mounts %+v, want an ID-mapped /etc/hostname", s.Mounts)
	}
}

func TestMappedMountsNeedUserNamespace(t *testing.T) {
	m := []*runtimeapi.Mount{{ContainerPath: "/d", HostPath: "/tmp", UidMappings: usernsOpts(1).Uids, GidMappings: usernsOpts(1).Gids}}
	wantErr(t, checkMappedMountsNeedUserns(testPod(runtimeapi.NamespaceMode_CONTAINER), m), "mounts[0].uidMappings: ID-mapped mounts need a pod with its own user namespace")
	wantErr(t, checkMappedMountsNeedUserns(usernsPod(false), m), "")
}
