package spec

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	testPasswd = `root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/:/bin/false
app:x:1000:1000::/home/app:/bin/sh
`
	testGroup = `root:x:0:root
wheel:x:10:root,app
app:x:1000:app
extra:x:50000:app
nogroup:x:65534:
`
)

// mapRoot serves fsys as a container's root and counts its reads.
func mapRoot(fsys fs.FS, reads *int) RootFS {
	return func(_ context.Context, fn func(fs.FS) error) error {
		*reads++
		return fn(fsys)
	}
}

func TestWithUser(t *testing.T) {
	image := fstest.MapFS{"etc/passwd": {Data: []byte(testPasswd)}, "etc/group": {Data: []byte(testGroup)}}
	empty := fstest.MapFS{}
	id := func(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
	strict := runtimeapi.SupplementalGroupsPolicy_Strict
	for _, tc := range []struct {
		name      string
		sc        *runtimeapi.LinuxContainerSecurityContext
		imageUser string
		fs        fs.FS
		uid, gid  uint32
		groups    []uint32
		noReads   bool
		err       string
	}{
		{name: "root by default, with root's image groups", fs: image, groups: []uint32{0, 10}},
		{
			name: "run_as_user, Merge adds image groups and supplemental ones",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsUser: id(1000), SupplementalGroups: []int64{1234}},
			fs:   image, uid: 1000, gid: 1000, groups: []uint32{10, 1000, 1234, 50000},
		},
		{
			name: "run_as_user, Strict leaves image groups out",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsUser: id(1000), SupplementalGroups: []int64{1234}, SupplementalGroupsPolicy: strict},
			fs:   image, uid: 1000, gid: 1000, groups: []uint32{1000, 1234},
		},
		{
			name: "run_as_user and run_as_group with Strict read nothing",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsUser: id(1001), RunAsGroup: id(1002), SupplementalGroupsPolicy: strict},
			uid:  1001, gid: 1002, groups: []uint32{1002}, noReads: true,
		},
		{
			name: "run_as_username",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "nobody"},
			fs:   image, uid: 65534, gid: 65534, groups: []uint32{65534},
		},
		{
			name: "run_as_username and run_as_group",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "app", RunAsGroup: id(7), SupplementalGroupsPolicy: strict},
			fs:   image, uid: 1000, gid: 7, groups: []uint32{7},
		},
		{
			name: "unknown username",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "ghost"},
			fs:   image, err: `linux.security_context.run_as_username: user "ghost" is not in the image's /etc/passwd`,
		},
		{
			name: "username without /etc/passwd",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "app"},
			fs:   empty, err: `user "app" is not in the image's /etc/passwd`,
		},
		{
			name: "run_as_group without a user",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: id(5)},
			fs:   image, imageUser: "app", err: "linux.security_context.run_as_group: needs run_as_user or run_as_username",
		},
		{name: "image user by name", imageUser: "app", fs: image, uid: 1000, gid: 1000, groups: []uint32{10, 1000, 50000}},
		{name: "image user:group names", imageUser: "app:extra", fs: image, uid: 1000, gid: 50000, groups: []uint32{10, 50000}},
		{name: "image uid:group", imageUser: "1000:wheel", fs: image, uid: 1000, gid: 10, groups: []uint32{10, 50000}},
		{name: "image uid:gid", imageUser: "5:6", fs: empty, uid: 5, gid: 6, groups: []uint32{6}},
		{name: "image group missing", imageUser: "1000:ghosts", fs: image, err: `image config User: group "ghosts" is not in the image's /etc/group`},
		{name: "image user malformed", imageUser: "a:b:c", fs: image, err: `image config User: "a:b:c" is not user, user:group, uid or uid:gid`},
		{
			name:      "run_as_user overrides the image user and its group",
			sc:        &runtimeapi.LinuxContainerSecurityContext{RunAsUser: id(1000), SupplementalGroupsPolicy: strict},
			imageUser: "1:2", fs: image, uid: 1000, gid: 1000, groups: []uint32{1000},
		},
		{
			name: "uid not in /etc/passwd gets group 0",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsUser: id(4242)},
			fs:   image, uid: 4242, gid: 0, groups: []uint32{0},
		},
		{
			name: "no /etc/passwd at all",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsUser: id(1000), SupplementalGroups: []int64{3}},
			fs:   empty, uid: 1000, gid: 0, groups: []uint32{0, 3},
		},
		{name: "negative uid", sc: &runtimeapi.LinuxContainerSecurityContext{RunAsUser: id(-1)}, err: "run_as_user: -1 is out of range"},
		{name: "huge uid", sc: &runtimeapi.LinuxContainerSecurityContext{RunAsUser: id(1 << 40)}, err: "run_as_user: 1099511627776 is out of range"},
		{name: "huge gid", sc: &runtimeapi.LinuxContainerSecurityContext{RunAsUser: id(1), RunAsGroup: id(1 << 31)}, err: "run_as_group: 2147483648 is out of range"},
		{
			name: "negative supplemental group",
			sc:   &runtimeapi.LinuxContainerSecurityContext{SupplementalGroups: []int64{1, -2}},
			err:  "linux.security_context.supplemental_groups[1]: -2 is out of range",
		},
		{
			name: "unknown policy",
			sc:   &runtimeapi.LinuxContainerSecurityContext{SupplementalGroupsPolicy: 3},
			err:  "supplemental_groups_policy: unknown policy 3",
		},
		{
			name: "unreadable /etc/passwd",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "app"},
			fs:   fstest.MapFS{"etc/passwd": {Mode: fs.ModeDir}},
			err:  "the image's /etc/passwd is not a regular file",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t)
			umask := uint32(0o22)
			s.Process.User.Umask = &umask
			reads := 0
			err := apply(s, WithUser(tc.sc, tc.imageUser, mapRoot(tc.fs, &reads)))
			wantErr(t, err, tc.err)
			if err != nil {
				if !errors.Is(err, errdefs.ErrInvalidArgument) && tc.name != "unreadable /etc/passwd" {
					t.Errorf("error %v is not InvalidArgument", err)
				}
				return
			}
			u := s.Process.User
			if u.UID != tc.uid || u.GID != tc.gid || !slices.Equal(u.AdditionalGids, tc.groups) {
				t.Errorf("user %d:%d groups %v, want %d:%d groups %v", u.UID, u.GID, u.AdditionalGids, tc.uid, tc.gid, tc.groups)
			}
			if u.Umask == nil || *u.Umask != umask {
				t.Error("umask lost")
			}
			if tc.noReads && reads != 0 {
				t.Errorf("read the rootfs %d times, want none", reads)
			}
			if !tc.noReads && reads != 1 {
				t.Errorf("read the rootfs %d times, want once", reads)
			}
		})
	}
}

func TestWithUserRootFSError(t *testing.T) {
	boom := errors.New("boom")
	root := func(context.Context, func(fs.FS) error) error { return boom }
	err := apply(newSpec(t), WithUser(nil, "", root))
	if !errors.Is(err, boom) {
		t.Errorf("error %v, want the rootfs's", err)
	}
}
