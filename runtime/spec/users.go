package spec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	scField        = "linux.security_context"
	imageUserField = "image config User"
	// maxUserFile caps how much of /etc/passwd or /etc/group is read.
	maxUserFile = 10 << 20
)

// WithUser sets the process's user and groups, as containerd's CRI does:
//   - the user is run_as_username, else run_as_user, else the image's User
//     ("user", "uid", "user:group", "uid:gid", ...), else root. A username
//     must exist in the image's /etc/passwd.
//   - the primary group is run_as_group (which needs a user), else the
//     image User's group part when the user came from the image, else the
//     user's group in /etc/passwd, else 0.
//   - the supplementary groups are the primary group, supplemental_groups,
//     and with SupplementalGroupsPolicy Merge (the default) the groups the
//     image's /etc/group lists the user in; Strict leaves those out. They
//     are sorted and unique, as containerd reports them.
//
// root is read only when a name must be resolved, the primary group comes
// from /etc/passwd, or the policy is Merge.
func WithUser(sc *runtimeapi.LinuxContainerSecurityContext, imageUser string, root RootFS) oci.SpecOpts {
	return must(userOpt(sc, imageUser, root))
}

// userRequest is a user to resolve against the image's files.
type userRequest struct {
	user, group           string // user is never empty; group may be
	userField, groupField string
	// mergeImageGroups adds the groups /etc/group lists the user in.
	mergeImageGroups bool
	supplemental     []uint32
}

func userOpt(sc *runtimeapi.LinuxContainerSecurityContext, imageUser string, root RootFS) (oci.SpecOpts, error) {
	req := userRequest{user: "0", userField: scField + ".run_as_user"}
	switch {
	case sc.GetRunAsUsername() != "":
		req.user, req.userField = sc.GetRunAsUsername(), scField+".run_as_username"
	case sc.GetRunAsUser() != nil:
		req.user = strconv.FormatInt(sc.GetRunAsUser().GetValue(), 10)
	case sc.GetRunAsGroup() != nil:
		return nil, invalid(scField+".run_as_group", "needs run_as_user or run_as_username")
	case imageUser != "":
		parts := strings.Split(imageUser, ":")
		if len(parts) > 2 || parts[0] == "" {
			return nil, invalid(imageUserField, "%q is not user, user:group, uid or uid:gid", imageUser)
		}
		req.user, req.userField = parts[0], imageUserField
		if len(parts) == 2 {
			req.group, req.groupField = parts[1], imageUserField
		}
	}
	if sc.GetRunAsGroup() != nil {
		req.group = strconv.FormatInt(sc.GetRunAsGroup().GetValue(), 10)
		req.groupField = scField + ".run_as_group"
	}
	if _, err := parseID(req.user, req.userField); err != nil && !errors.Is(err, errNotNumeric) {
		return nil, err
	}
	if _, err := parseID(req.group, req.groupField); err != nil && !errors.Is(err, errNotNumeric) {
		return nil, err
	}
	for i, g := range sc.GetSupplementalGroups() {
		if g < 0 || g > math.MaxInt32 {
			return nil, invalid(fmt.Sprintf("%s.supplemental_groups[%d]", scField, i), "%d is out of range", g)
		}
		req.supplemental = append(req.supplemental, uint32(g))
	}
	switch p := sc.GetSupplementalGroupsPolicy(); p {
	case runtimeapi.SupplementalGroupsPolicy_Merge:
		req.mergeImageGroups = true
	case runtimeapi.SupplementalGroupsPolicy_Strict:
	default:
		return nil, invalid(scField+".supplemental_groups_policy", "unknown policy %d", p)
	}

	return func(ctx context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		var u specs.User
		var err error
		if req.needsFiles() {
			if root == nil {
				return fmt.Errorf("resolving the container's user: no root filesystem to read /etc/passwd from")
			}
			err = root(ctx, func(fsys fs.FS) error {
				var rerr error
				u, rerr = req.resolve(fsys)
				return rerr
			})
		} else {
			u, err = req.resolve(nil)
		}
		if err != nil {
			return err
		}
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		u.Umask = s.Process.User.Umask
		s.Process.User = u
		return nil
	}, nil
}

var errNotNumeric = errors.New("not numeric")

// parseID parses a numeric uid or gid in runc's range; errNotNumeric
// means s is a name. An empty s is errNotNumeric too.
func parseID(s, field string) (uint32, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, invalid(field, "%q is out of range", s)
	}
	if err != nil {
		return 0, errNotNumeric
	}
	if v < 0 || v > math.MaxInt32 {
		return 0, invalid(field, "%d is out of range 0-%d", v, math.MaxInt32)
	}
	return uint32(v), nil
}

func (r userRequest) needsFiles() bool {
	_, uerr := parseID(r.user, r.userField)
	_, gerr := parseID(r.group, r.groupField)
	return uerr != nil || gerr != nil || r.mergeImageGroups
}

// resolve finds r's ids; fsys is the image's root (nil when needsFiles is
// false).
func (r userRequest) resolve(fsys fs.FS) (specs.User, error) {
	var u specs.User
	var name string
	var passwdGID *uint32
	if uid, err := parseID(r.user, r.userField); err == nil {
		u.UID = uid
		if fsys != nil {
			e, err := findUser(fsys, func(e user.User) bool { return e.Uid == int(uid) })
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return u, err
			}
			if err == nil {
				name, passwdGID = e.Name, ptr(uint32(e.Gid))
			}
		}
	} else {
		e, err := findUser(fsys, func(e user.User) bool { return e.Name == r.user })
		if errors.Is(err, fs.ErrNotExist) {
			return u, invalid(r.userField, "user %q is not in the image's /etc/passwd", r.user)
		}
		if err != nil {
			return u, err
		}
		u.UID, name, passwdGID = uint32(e.Uid), e.Name, ptr(uint32(e.Gid))
	}

	switch gid, err := parseID(r.group, r.groupField); {
	case err == nil:
		u.GID = gid
	case r.group != "":
		g, err := findGroups(fsys, func(g user.Group) bool { return g.Name == r.group })
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return u, err
		}
		if len(g) == 0 {
			return u, invalid(r.groupField, "group %q is not in the image's /etc/group", r.group)
		}
		u.GID = uint32(g[0].Gid)
	case passwdGID != nil:
		u.GID = *passwdGID
	}

	gids := append([]uint32{u.GID}, r.supplemental...)
	if r.mergeImageGroups && name != "" {
		groups, err := findGroups(fsys, func(g user.Group) bool {
			// The user's own group is its primary one, added above.
			return g.Name != name && slices.Contains(g.List, name)
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return u, err
		}
		for _, g := range groups {
			gids = append(gids, uint32(g.Gid))
		}
	}
	slices.Sort(gids)
	u.AdditionalGids = slices.Compact(gids)
	return u, nil
}

func ptr[T any](v T) *T { return &v }

// findUser returns the first /etc/passwd entry that matches; fs.ErrNotExist
// when the file or the entry is missing.
func findUser(fsys fs.FS, match func(user.User) bool) (user.User, error) {
	f, err := openUserFile(fsys, "etc/passwd")
	if err != nil {
		return user.User{}, err
	}
	defer f.Close()
	users, err := user.ParsePasswdFilter(io.LimitReader(f, maxUserFile), match)
	if err != nil {
		return user.User{}, fmt.Errorf("reading the image's /etc/passwd: %w", err)
	}
	if len(users) == 0 {
		return user.User{}, fs.ErrNotExist
	}
	return users[0], nil
}

// findGroups returns the /etc/group entries that match; fs.ErrNotExist
// when the file is missing.
func findGroups(fsys fs.FS, match func(user.Group) bool) ([]user.Group, error) {
	f, err := openUserFile(fsys, "etc/group")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	groups, err := user.ParseGroupFilter(io.LimitReader(f, maxUserFile), match)
	if err != nil {
		return nil, fmt.Errorf("reading the image's /etc/group: %w", err)
	}
	return groups, nil
}

// openUserFile opens a regular file of the image; a missing one (or a
// missing filesystem) is fs.ErrNotExist.
func openUserFile(fsys fs.FS, name string) (fs.File, error) {
	if fsys == nil {
		return nil, fs.ErrNotExist
	}
	f, err := fsys.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, fs.ErrNotExist
		}
		return nil, fmt.Errorf("opening the image's /%s: %w", name, err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("the image's /%s is not a regular file", name)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
