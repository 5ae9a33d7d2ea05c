package spec

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/containerd/containerd/v2/core/mount"
	"golang.org/x/sys/unix"
)

// RootFS gives fn read-only access to a container's root filesystem. fn
// may be called twice when a view turns out to need a real mount; it must
// have no effect besides its result.
type RootFS func(ctx context.Context, fn func(fs.FS) error) error

// waitingRootFS reads the filesystem of the mounts that mounts returns
// when fn needs them (it may wait for the snapshot to be prepared).
func waitingRootFS(mounts func(context.Context) ([]mount.Mount, error)) RootFS {
	return func(ctx context.Context, fn func(fs.FS) error) error {
		m, err := mounts(ctx)
		if err != nil {
			return err
		}
		return MountsRootFS(m)(ctx, fn)
	}
}

// errNeedMount is returned by a view that cannot answer without mounting.
var errNeedMount = errors.New("the rootfs view needs a real mount")

// MountsRootFS reads the filesystem a snapshot's mounts describe. One bind
// mount is read in place, and an overlay through its layer directories
// (whiteouts and opaque directories honoured), both without mounting
// anything: that keeps a mount and unmount off every CreateContainer. Any
// other mounts, and an overlay path with a symlink on the way, are read
// through a temporary read-only mount (mount.WithReadonlyTempMount).
func MountsRootFS(mounts []mount.Mount) RootFS {
	return func(ctx context.Context, fn func(fs.FS) error) error {
		if len(mounts) == 0 {
			return errors.New("reading the image's files: the container has no rootfs mounts")
		}
		if view, closeView, ok := viewOf(mounts); ok {
			err := fn(view)
			closeView()
			if !errors.Is(err, errNeedMount) {
				return err
			}
		}
		return mount.WithReadonlyTempMount(ctx, mounts, func(root string) error {
			r, err := os.OpenRoot(root)
			if err != nil {
				return err
			}
			defer r.Close()
			return fn(r.FS())
		})
	}
}

// viewOf returns a filesystem that reads mounts without mounting them, if
// it knows their kind.
func viewOf(mounts []mount.Mount) (fs.FS, func(), bool) {
	if len(mounts) != 1 {
		return nil, nil, false
	}
	m := mounts[0]
	switch {
	case m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind"):
		r, err := os.OpenRoot(m.Source)
		if err != nil {
			return nil, nil, false
		}
		return r.FS(), func() { r.Close() }, true
	case m.Type == "overlay":
		o, ok := overlayOf(m.Options)
		return o, func() {}, ok
	}
	return nil, nil, false
}

// overlayFS reads an overlay mount's merged view from its layer
// directories, topmost first. Open answers for files; a directory opened
// through it lists its topmost layer only.
type overlayFS struct {
	layers []string
	// opaque is the xattr that marks an opaque directory.
	opaque string
}

func overlayOf(options []string) (*overlayFS, bool) {
	o := &overlayFS{opaque: "trusted.overlay.opaque"}
	var upper, lower string
	for _, opt := range options {
		k, v, _ := strings.Cut(opt, "=")
		switch {
		case k == "upperdir":
			upper = v
		case k == "lowerdir":
			lower = v
		case k == "userxattr":
			o.opaque = "user.overlay.opaque"
		case strings.HasSuffix(k, "+") || k == "metacopy" || k == "redirect_dir":
			// lowerdir+=, datadir+=, metacopy and redirects: not read here.
			return nil, false
		}
	}
	if lower == "" || strings.Contains(lower, `\`) {
		return nil, false
	}
	if upper != "" {
		o.layers = append(o.layers, upper)
	}
	o.layers = append(o.layers, strings.Split(lower, ":")...)
	return o, true
}

// Open implements fs.FS.
func (o *overlayFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	var parts []string
	if name != "." {
		parts = strings.Split(name, "/")
	}
	for _, layer := range o.layers {
		p, hidden, err := o.lookup(layer, parts)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		if p != "" {
			return os.Open(p)
		}
		if hidden {
			break
		}
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// lookup finds parts in one layer. It returns the host path when the layer
// has them, and hidden when it hides them in the layers below: a whiteout,
// a non-directory where a directory is needed, or an opaque directory on
// the way.
func (o *overlayFS) lookup(layer string, parts []string) (string, bool, error) {
	p, opaque := layer, false
	for i, part := range parts {
		p = filepath.Join(p, part)
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return "", opaque, nil
		}
		if err != nil {
			return "", false, err
		}
		switch mode := st.Mode(); {
		case mode&fs.ModeCharDevice != 0 && st.Sys().(*syscall.Stat_t).Rdev == 0:
			return "", true, nil
		case mode&fs.ModeSymlink != 0:
			return "", false, errNeedMount
		case i < len(parts)-1 && !mode.IsDir():
			return "", true, nil
		case mode.IsDir() && o.isOpaque(p):
			opaque = true
		}
	}
	return p, false, nil
}

func (o *overlayFS) isOpaque(dir string) bool {
	buf := make([]byte, 1)
	n, err := unix.Lgetxattr(dir, o.opaque, buf)
	return err == nil && n == 1 && buf[0] == 'y'
}
