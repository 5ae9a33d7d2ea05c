package testregistry

import (
	"fmt"
	"os"
	"path/filepath"
)

// MirroredHosts are the registries WriteHostsDir sends to the loopback
// registry: every host an image name of the set uses, and quay.io.
var MirroredHosts = []string{"registry.k8s.io", "k8s.gcr.io", "gcr.io", "docker.io", "public.ecr.aws", "quay.io"}

// upstream returns the server URL of a mirrored host.
func upstream(host string) string {
	if host == "docker.io" {
		return "https://registry-1.docker.io"
	}
	return "https://" + host
}

// WriteHostsDir writes a containerd hosts directory (containerd's
// docs/hosts.md; read with config.HostDirFromRoot(dir)) under dir, creating
// dir if needed:
//
//   - DIR/HOST/hosts.toml for each of MirroredHosts, naming the loopback
//     registry at addr as a plain-http mirror with pull and resolve
//     capabilities, so that HOST/PATH:TAG is fetched as
//     http://addr/v2/PATH/manifests/TAG, which is LoopbackPath's layout;
//   - DIR/addr/hosts.toml (e.g. DIR/127.0.0.1:5000/hosts.toml), making addr
//     itself a plain-http registry with pull, resolve and push.
//
// Existing hosts.toml files for those hosts are replaced (atomically);
// nothing else in dir is touched.
func WriteHostsDir(dir, addr string) error {
	if err := checkLoopback(addr); err != nil {
		return err
	}
	files := map[string]string{
		addr: fmt.Sprintf("# Written by slipway hack/testimages: the loopback test registry.\n"+
			"server = %q\ncapabilities = [\"pull\", \"resolve\", \"push\"]\n", "http://"+addr),
	}
	for _, h := range MirroredHosts {
		files[h] = fmt.Sprintf("# Written by slipway hack/testimages: %s is served by the loopback test registry.\n"+
			"server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", h, upstream(h), "http://"+addr)
	}
	for host, content := range files {
		if err := writeFileAtomic(filepath.Join(dir, host, "hosts.toml"), []byte(content)); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic writes data to path (mode 0644) through a temporary file
// in the same directory, creating the directory if needed.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".hosts-*.toml")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
