package imagevolume

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
)

// resolveSubPath is the host path of directory sub inside the mounted
// view root, with its symlinks resolved; "" is root itself. sub must be a
// directory of the image, reached without leaving it (a symlink to an
// absolute path or up past the root is refused, as os.Root does): the
// view is read-only, so what is checked here is what runc bind-mounts.
// Errors are errdefs.ErrInvalidArgument.
func resolveSubPath(root, sub string) (string, error) {
	if sub == "" {
		return root, nil
	}
	if strings.ContainsRune(sub, 0) || !filepath.IsLocal(sub) {
		return "", fmt.Errorf("%q is not a relative path inside the image: %w", sub, errdefs.ErrInvalidArgument)
	}
	f, err := os.OpenInRoot(root, sub)
	if err != nil {
		return "", fmt.Errorf("%q is not in the image: %w: %w", sub, unwrapPathError(err), errdefs.ErrInvalidArgument)
	}
	st, err := f.Stat()
	f.Close()
	if err != nil {
		return "", fmt.Errorf("%q: %w", sub, err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%q is not a directory in the image (only directories can be mounted): %w", sub, errdefs.ErrInvalidArgument)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	p, err := filepath.EvalSymlinks(filepath.Join(realRoot, sub))
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(realRoot, p); err != nil || !filepath.IsLocal(rel) && rel != "." {
		return "", fmt.Errorf("%q leads out of the image: %w", sub, errdefs.ErrInvalidArgument)
	}
	return p, nil
}

// unwrapPathError drops the *os.PathError's path, which is the host's.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
