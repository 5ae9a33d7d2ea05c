package imagevolume

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
)

func TestResolveSubPath(t *testing.T) {
	root := t.TempDir()
	mustMkdir(t, filepath.Join(root, "etc", "conf.d"))
	if err := os.WriteFile(filepath.Join(root, "etc", "passwd"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "etc", filepath.Join(root, "etc-link"))
	mustSymlink(t, "/etc", filepath.Join(root, "abs-link"))
	mustSymlink(t, "../..", filepath.Join(root, "etc", "up"))
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sub     string
		want    string // relative to root
		invalid bool
	}{
		{sub: "", want: "."},
		{sub: "etc", want: "etc"},
		{sub: "etc/conf.d/", want: "etc/conf.d"},
		{sub: "./etc", want: "etc"},
		{sub: "etc-link", want: "etc"},
		{sub: "etc/passwd", invalid: true},
		{sub: "not-existing", invalid: true},
		{sub: "abs-link", invalid: true},
		{sub: "etc/up", invalid: true},
		{sub: "../x", invalid: true},
		{sub: "/etc", invalid: true},
		{sub: "etc\x00", invalid: true},
	} {
		got, err := resolveSubPath(root, tc.sub)
		if tc.invalid {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("resolveSubPath(%q) = %q, %v; want an invalid argument", tc.sub, got, err)
			}
			continue
		}
		want := filepath.Join(realRoot, tc.want)
		if tc.sub == "" {
			want = root
		}
		if err != nil || got != want {
			t.Errorf("resolveSubPath(%q) = %q, %v; want %q", tc.sub, got, err, want)
		}
	}
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}
