package spec

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/containerd/v2/core/mount"
	"golang.org/x/sys/unix"
)

func writeFiles(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll reads names from fsys; a missing file reads as "<missing>".
func readAll(t *testing.T, root RootFS, names []string) (map[string]string, error) {
	got := map[string]string{}
	err := root(context.Background(), func(fsys fs.FS) error {
		for _, n := range names {
			b, err := fs.ReadFile(fsys, n)
			switch {
			case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
				got[n] = "<missing>"
			case err != nil:
				return err
			default:
				got[n] = string(b)
			}
		}
		return nil
	})
	return got, err
}

func TestMountsRootFSBind(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"etc/passwd": "bind"})
	got, err := readAll(t, MountsRootFS([]mount.Mount{{Type: "bind", Source: dir, Options: []string{"rbind", "rw"}}}), []string{"etc/passwd", "etc/group"})
	if err != nil {
		t.Fatal(err)
	}
	if got["etc/passwd"] != "bind" || got["etc/group"] != "<missing>" {
		t.Errorf("read %v", got)
	}
	if _, err := readAll(t, MountsRootFS(nil), []string{"etc/passwd"}); err == nil {
		t.Error("no mounts: no error")
	}
}

func TestOverlayOf(t *testing.T) {
	for _, tc := range []struct {
		opts   []string
		layers string
		opaque string
		ok     bool
	}{
		{opts: []string{"index=off", "workdir=/w", "upperdir=/u", "lowerdir=/l1:/l2"}, layers: "/u,/l1,/l2", opaque: "trusted.overlay.opaque", ok: true},
		{opts: []string{"lowerdir=/l1:/l2", "userxattr"}, layers: "/l1,/l2", opaque: "user.overlay.opaque", ok: true},
		{opts: []string{"upperdir=/u", "lowerdir+=/l1"}},
		{opts: []string{"upperdir=/u"}},
		{opts: []string{"lowerdir=/a\\:b"}},
		{opts: []string{"lowerdir=/l", "metacopy=on"}},
	} {
		o, ok := overlayOf(tc.opts)
		if ok != tc.ok {
			t.Errorf("%v: ok %v, want %v", tc.opts, ok, tc.ok)
			continue
		}
		if ok && (strings.Join(o.layers, ",") != tc.layers || o.opaque != tc.opaque) {
			t.Errorf("%v: layers %v opaque %s, want %s %s", tc.opts, o.layers, o.opaque, tc.layers, tc.opaque)
		}
	}
}

// TestOverlayView builds overlay layers with a whiteout, an opaque
// directory and a symlink, and checks that the view reads what a real
// overlay mount shows.
func TestOverlayView(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for whiteouts, trusted xattrs and overlay mounts")
	}
	dir := t.TempDir()
	upper, l1, l2, work := filepath.Join(dir, "upper"), filepath.Join(dir, "l1"), filepath.Join(dir, "l2"), filepath.Join(dir, "work")
	for _, d := range []string{upper, l1, l2, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFiles(t, l2, map[string]string{
		"etc/passwd": "bottom", "etc/group": "bottom", "etc/hidden": "bottom", "opq/file": "bottom",
		"file/x": "bottom", "etc/shadow": "bottom",
	})
	writeFiles(t, l1, map[string]string{"opq/other": "l1", "file": "l1"})
	writeFiles(t, upper, map[string]string{"etc/passwd": "upper", "etc/real": "via link"})
	if err := unix.Mknod(filepath.Join(l1, "etc/group"), unix.S_IFCHR, 0); err != nil {
		if err2 := os.MkdirAll(filepath.Join(l1, "etc"), 0o755); err2 != nil {
			t.Fatal(err2)
		}
		if err := unix.Mknod(filepath.Join(l1, "etc/group"), unix.S_IFCHR, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Setxattr(filepath.Join(l1, "opq"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	names := []string{"etc/passwd", "etc/group", "etc/hidden", "opq/file", "opq/other", "file/x", "etc/shadow", "etc/none", "none/x"}
	overlay := []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"workdir=" + work, "upperdir=" + upper, "lowerdir=" + l1 + ":" + l2,
	}}}

	view, ok := overlayOf(overlay[0].Options)
	if !ok {
		t.Fatal("overlay options not understood")
	}
	viewed, err := readAll(t, func(_ context.Context, fn func(fs.FS) error) error { return fn(view) }, names)
	if err != nil {
		t.Fatal(err)
	}
	mounted, err := readAll(t, func(ctx context.Context, fn func(fs.FS) error) error {
		return mount.WithReadonlyTempMount(ctx, overlay, func(root string) error { return fn(os.DirFS(root)) })
	}, names)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if viewed[n] != mounted[n] {
			t.Errorf("%s: view reads %q, the mount %q", n, viewed[n], mounted[n])
		}
	}
	want := map[string]string{"etc/passwd": "upper", "etc/group": "<missing>", "etc/hidden": "bottom", "opq/file": "<missing>", "opq/other": "l1", "file/x": "<missing>"}
	for n, w := range want {
		if viewed[n] != w {
			t.Errorf("%s: read %q, want %q", n, viewed[n], w)
		}
	}

	// A symlink on the way needs the real mount; MountsRootFS falls back.
	if err := os.Symlink("real", filepath.Join(upper, "etc/group")); err != nil {
		t.Fatal(err)
	}
	if _, err := view.Open("etc/group"); !errors.Is(err, errNeedMount) {
		t.Errorf("symlink: %v, want errNeedMount", err)
	}
	got, err := readAll(t, MountsRootFS(overlay), []string{"etc/group", "etc/passwd"})
	if err != nil {
		t.Fatal(err)
	}
	if got["etc/group"] != "via link" || got["etc/passwd"] != "upper" {
		t.Errorf("through the fallback mount: %v", got)
	}
}
