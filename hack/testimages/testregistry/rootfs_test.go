package testregistry

import (
	"archive/tar"
	"errors"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// fsEntry is one file of a flattened image: its header, and its content if
// it is a regular file of at most 64 KiB.
type fsEntry struct {
	hdr  *tar.Header
	data []byte
}

// imageFS returns the flattened file system of img by path ("bin/sh").
func imageFS(t *testing.T, img v1.Image) map[string]fsEntry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]fsEntry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		e := fsEntry{hdr: h}
		if h.Typeflag == tar.TypeReg && h.Size <= 64<<10 {
			if e.data, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
		out[strings.TrimSuffix(h.Name, "/")] = e
	}
}

func TestBusyboxAppletsAreHardLinks(t *testing.T) {
	srv := testServer(t)
	fs := imageFS(t, srv.Images()[DefaultImage])
	bb, ok := fs["bin/busybox"]
	if !ok || bb.hdr.Typeflag != tar.TypeReg || bb.hdr.Mode != 0o755 {
		t.Fatalf("bin/busybox: %+v", bb.hdr)
	}
	for _, applet := range []string{"bin/sh", "bin/ls", "bin/cat", "bin/sleep", "usr/bin/id", "usr/bin/top", "bin/pidof", "bin/ping", "bin/hostname", "bin/netstat"} {
		e, ok := fs[applet]
		if !ok {
			t.Errorf("%s missing", applet)
			continue
		}
		if e.hdr.Typeflag != tar.TypeLink || e.hdr.Linkname != "bin/busybox" || e.hdr.Mode != 0o755 {
			t.Errorf("%s: type %c link %q mode %o; want a 0755 hard link to bin/busybox", applet, e.hdr.Typeflag, e.hdr.Linkname, e.hdr.Mode)
		}
	}
	for p, e := range fs {
		if e.hdr.Typeflag == tar.TypeSymlink {
			t.Errorf("%s is a symlink", p)
		}
	}
	for _, p := range []string{"usr/bin/ipcs", "usr/bin/pgrep"} {
		if e, ok := fs[p]; !ok || e.hdr.Typeflag != tar.TypeReg || e.hdr.Mode != 0o755 {
			t.Errorf("%s: missing or not an executable file", p)
		}
	}
	if e := fs["tmp"]; e.hdr == nil || e.hdr.Mode != 0o1777 {
		t.Errorf("tmp is not 1777")
	}
	for _, line := range []string{"nobody:x:65534:65534:", "www-data:x:33:33:"} {
		if !strings.Contains(string(fs["etc/passwd"].data), line) {
			t.Errorf("etc/passwd lacks %q", line)
		}
	}
}

func TestImageFiles(t *testing.T) {
	srv := testServer(t)
	tests := []struct {
		image, path string
		mode        int64
		contains    string
	}{
		{NoNewPrivsImage, "usr/local/bin/nnp", 0o4755, ""},
		{PauseImage, "pause", 0o755, ""},
		{NginxImage, "usr/sbin/nginx", 0o755, ""},
		{NginxImage, "etc/nginx/conf.d/default.conf", 0o644, "listen       80;"},
		{HostNetNginxImage, "etc/nginx/conf.d/default.conf", 0o644, "listen       12003;"},
		{HttpdImage, "usr/local/bin/httpd-foreground", 0o755, ""},
		{HttpdImage, "usr/local/apache2/htdocs/index.html", 0o644, "It works!"},
		{criToolsRegistry + "test-image-predefined-group:latest", "etc/group", 0o644, "\ngroup-defined-in-image:x:50000:default-user\n"},
		{criToolsRegistry + "test-image-predefined-group:latest", "etc/passwd", 0o644, "\ndefault-user:x:1000:1000:"},
		{criToolsRegistry + "test-image-1:latest", "test-image-1", 0o644, ""},
		{criToolsRegistry + "test-image-tags:2", "same-image", 0o644, ""},
	}
	fsOf := map[string]map[string]fsEntry{}
	for _, tt := range tests {
		if fsOf[tt.image] == nil {
			fsOf[tt.image] = imageFS(t, srv.Images()[tt.image])
		}
		e, ok := fsOf[tt.image][tt.path]
		if !ok {
			t.Errorf("%s: no %s", tt.image, tt.path)
			continue
		}
		if e.hdr.Typeflag != tar.TypeReg || e.hdr.Mode != tt.mode || e.hdr.Uid != 0 {
			t.Errorf("%s: %s: type %c mode %o uid %d; want a file, mode %o, uid 0", tt.image, tt.path, e.hdr.Typeflag, e.hdr.Mode, e.hdr.Uid, tt.mode)
		}
		if tt.contains != "" && !strings.Contains(string(e.data), tt.contains) {
			t.Errorf("%s: %s lacks %q:\n%s", tt.image, tt.path, tt.contains, e.data)
		}
	}
	if _, ok := imageFS(t, srv.Images()[PauseImage])["bin/sh"]; ok {
		t.Errorf("%s has a shell; it should hold /pause only", PauseImage)
	}
}
