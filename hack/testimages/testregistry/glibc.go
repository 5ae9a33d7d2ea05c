package testregistry

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// libDirs are where elfDeps looks for shared libraries on the host, in order.
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// hostFile is a file copied from the host: its path (on the host and in the
// image) and its content, with symbolic links followed.
type hostFile struct {
	path string
	data []byte
}

// elfDeps returns what the ELF program bin needs at run time: its
// interpreter and, recursively, every shared library it needs, as found in
// libDirs. It returns nil for a statically linked program.
func elfDeps(bin string) ([]hostFile, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var interp string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return nil, fmt.Errorf("%s: reading interpreter: %w", bin, err)
			}
			interp = string(bytes.TrimRight(b, "\x00"))
		}
	}
	if interp == "" {
		return nil, nil
	}

	found := map[string]bool{interp: true} // host paths, also their paths in the image
	queue := []string{bin}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		libs, err := neededLibs(next)
		if err != nil {
			return nil, err
		}
		for _, lib := range libs {
			p, err := findLib(lib)
			if err != nil {
				return nil, fmt.Errorf("%s needs %s: %w", next, lib, err)
			}
			if filepath.Base(p) == filepath.Base(interp) {
				continue // the interpreter, already found under its own path
			}
			if !found[p] {
				found[p] = true
				queue = append(queue, p)
			}
		}
	}

	var out []hostFile
	for p := range found {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, hostFile{path: p, data: data})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, nil
}

// neededLibs returns the DT_NEEDED entries of the ELF file at p.
func neededLibs(p string) ([]string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ImportedLibraries()
}

// findLib returns the first path in libDirs holding lib.
func findLib(lib string) (string, error) {
	if strings.Contains(lib, "/") {
		return lib, nil
	}
	for _, d := range libDirs {
		p := filepath.Join(d, lib)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in %v", libDirs)
}

// FetchDebianBusybox makes Debian's busybox package (dynamically linked, its
// shell execs commands from PATH) available under dir and returns the path
// of its binary, dir/bin/busybox. If that file exists it is returned as is;
// otherwise the package is downloaded with `apt-get download busybox` (the
// host's apt sources; needs network) and unpacked with dpkg-deb. The result
// suits BuildOptions.GlibcBusybox on a Debian host whose glibc it was built
// against.
func FetchDebianBusybox(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "bin", "busybox")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, "download-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	// apt-get download writes to the current directory; as root it warns that
	// the _apt user cannot write there, which is harmless.
	dl := exec.CommandContext(ctx, "apt-get", "download", "busybox")
	dl.Dir = tmp
	if out, err := dl.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download busybox: %w: %s", err, out)
	}
	debs, err := filepath.Glob(filepath.Join(tmp, "busybox_*.deb"))
	if err != nil || len(debs) != 1 {
		return "", fmt.Errorf("apt-get download busybox: expected one busybox_*.deb, found %v", debs)
	}
	unpacked := filepath.Join(tmp, "root")
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], unpacked).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb -x %s: %w: %s", debs[0], err, out)
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(unpacked, "bin", "busybox"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// ShellExecsFromPath reports whether the shell of busybox bin looks commands
// up in PATH, as GlibcBusybox requires, rather than running its applets
// in-process: it runs `bin sh -c ls` with an empty PATH on the host.
func ShellExecsFromPath(ctx context.Context, bin string) (bool, error) {
	cmd := exec.CommandContext(ctx, bin, "sh", "-c", "ls /")
	cmd.Env = []string{"PATH=" + filepath.Join(os.TempDir(), "nonexistent-slipway-path")}
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return false, nil
	case errors.As(err, &exit) && exit.ExitCode() == 127:
		return true, nil
	}
	return false, fmt.Errorf("%s sh -c ls: %w", bin, err)
}
