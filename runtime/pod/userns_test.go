package pod

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestIDMappings(t *testing.T) {
	m := func(c, h, l uint32) *runtimeapi.IDMapping {
		return &runtimeapi.IDMapping{ContainerId: c, HostId: h, Length: l}
	}
	pod := func(mappings ...*runtimeapi.IDMapping) *runtimeapi.UserNamespace {
		u := &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}
		if len(mappings) == 2 {
			u.Uids, u.Gids = mappings[:1], mappings[1:]
		}
		return u
	}
	for _, tc := range []struct {
		name string
		in   *runtimeapi.UserNamespace
		want []specs.LinuxIDMapping
		err  string
	}{
		{name: "none", in: nil},
		{name: "node's", in: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}},
		{name: "kubelet's", in: pod(m(0, 65536*3, 65536), m(0, 65536*3, 65536)), want: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 65536 * 3, Size: 65536}}},
		{name: "NODE with mappings", in: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE, Uids: []*runtimeapi.IDMapping{m(0, 1000, 10)}},
			err: "userns_options: mode NODE takes no mappings; got 1 UID and 0 GID mappings"},
		{name: "CONTAINER", in: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}, err: "userns_options.mode: CONTAINER is not allowed"},
		{name: "TARGET", in: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_TARGET}, err: "userns_options.mode: TARGET is not allowed"},
		{name: "POD without mappings", in: pod(), err: "userns_options.uids: mode POD needs exactly one mapping, got 0"},
		{name: "two UID mappings", in: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
			Uids: []*runtimeapi.IDMapping{m(0, 1000, 10), m(10, 2000, 10)}, Gids: []*runtimeapi.IDMapping{m(0, 1000, 10)}},
			err: "userns_options.uids: mode POD needs exactly one mapping, got 2"},
		{name: "GIDs missing", in: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: []*runtimeapi.IDMapping{m(0, 1000, 10)}},
			err: "userns_options.gids: mode POD needs exactly one mapping, got 0"},
		{name: "0 unmapped", in: pod(m(1, 1000, 10), m(1, 1000, 10)), err: "userns_options.uids[0].container_id: is 1: container ID 0 must be mapped"},
		{name: "null mapping", in: pod(nil, nil), err: "userns_options.uids[0]: is null"},
		{name: "empty", in: pod(m(0, 1000, 0), m(0, 1000, 0)), err: "userns_options.uids[0].length: must not be 0"},
		{name: "past 32 bits", in: pod(m(0, 1<<32-10, 65536), m(0, 1000, 10)), err: "userns_options.uids[0]: host IDs 4294967286+65536 pass the 32-bit ID space"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uids, gids, err := IDMappings(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("IDMappings = %v, want InvalidArgument containing %q", err, tc.err)
				}
				if !strings.HasPrefix(err.Error(), UsernsField) {
					t.Errorf("error %q does not name the field from %s", err, UsernsField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(uids, tc.want) || !slices.Equal(gids, tc.want) {
				t.Errorf("IDMappings = %v, %v; want %v", uids, gids, tc.want)
			}
		})
	}
}
