package testregistry

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestElfDepsStatic(t *testing.T) {
	deps, err := elfDeps("/bin/busybox")
	if err != nil || deps != nil {
		t.Errorf("elfDeps(/bin/busybox) = %v, %v; want nothing for a static binary", deps, err)
	}
}

func TestElfDepsDynamic(t *testing.T) {
	sh, err := exec.LookPath("sh") // dash or bash: dynamically linked on Debian
	if err != nil {
		t.Skip(err)
	}
	deps, err := elfDeps(sh)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, d := range deps {
		paths = append(paths, d.path)
	}
	joined := strings.Join(paths, " ")
	if !strings.Contains(joined, "ld-linux") || !strings.Contains(joined, "libc.so.6") {
		t.Errorf("elfDeps(%s) = %v; want the loader and libc", sh, paths)
	}
	for _, d := range deps {
		if len(d.data) == 0 {
			t.Errorf("%s: empty", d.path)
		}
	}
}

func TestStaticBusyboxShellRunsAppletsInProcess(t *testing.T) {
	execs, err := ShellExecsFromPath(context.Background(), "/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if execs {
		t.Error("busybox-static's shell found ls without PATH; expected it to run the applet in-process")
	}
}

// findGlibcBusybox returns a busybox whose shell execs from PATH: the file named
// by $SLIPWAY_GLIBC_BUSYBOX, or the one FetchDebianBusybox caches for the
// testimages command. It skips the test if there is none.
func findGlibcBusybox(t *testing.T) string {
	if p := os.Getenv("SLIPWAY_GLIBC_BUSYBOX"); p != "" {
		return p
	}
	if cache, err := os.UserCacheDir(); err == nil {
		p := filepath.Join(cache, "slipway", "debian-busybox", "bin", "busybox")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("no glibc busybox: set SLIPWAY_GLIBC_BUSYBOX or run `go run ./hack/testimages --fetch-glibc-busybox --list`")
	return ""
}

func TestGlibcBusyboxLayer(t *testing.T) {
	bin := findGlibcBusybox(t)
	execs, err := ShellExecsFromPath(context.Background(), bin)
	if err != nil || !execs {
		t.Fatalf("ShellExecsFromPath(%s) = %v, %v; want true", bin, execs, err)
	}
	layer, err := busyboxLayer(bin)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layer.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	found := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		found[h.Name] = h
	}
	for _, p := range []string{"lib64/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/libc.so.6", "bin/sh", "bin/ls"} {
		if found[p] == nil {
			t.Errorf("%s missing", p)
		}
	}
}
