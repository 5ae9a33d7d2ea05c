package testregistry

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
)

func TestWriteHostsDirParsesWithContainerd(t *testing.T) {
	const addr = "127.0.0.1:5000"
	dir := t.TempDir()
	if err := WriteHostsDir(dir, addr); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hosts := config.ConfigureHosts(ctx, config.HostOptions{HostDir: config.HostDirFromRoot(dir)})
	pullResolve := docker.HostCapabilityPull | docker.HostCapabilityResolve
	for _, h := range append([]string{addr}, MirroredHosts...) {
		rh, err := hosts(h)
		if err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		if len(rh) == 0 {
			t.Fatalf("%s: no hosts", h)
		}
		first := rh[0]
		if first.Scheme != "http" || first.Host != addr || first.Path != "/v2" || !first.Capabilities.Has(pullResolve) {
			t.Errorf("%s: first host %s://%s%s caps %b; want http://%s/v2 with pull and resolve",
				h, first.Scheme, first.Host, first.Path, first.Capabilities, addr)
		}
	}

	// Rewriting replaces the files in place.
	if err := WriteHostsDir(dir, "127.0.0.1:5001"); err != nil {
		t.Fatal(err)
	}
	rh, err := hosts("registry.k8s.io")
	if err != nil || rh[0].Host != "127.0.0.1:5001" {
		t.Errorf("after rewrite: %v, %v", rh, err)
	}
	if err := WriteHostsDir(dir, "10.0.0.1:5000"); err == nil {
		t.Error("WriteHostsDir accepted a non-loopback address")
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "*", ".hosts-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// TestContainerdResolvesThroughHostsDir resolves every name as containerd's
// CRI does, through the hosts directory, and the private image with basic
// credentials.
func TestContainerdResolvesThroughHostsDir(t *testing.T) {
	srv := testServer(t)
	dir := t.TempDir()
	if err := WriteHostsDir(dir, srv.Addr()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	resolver := func(creds bool) docker.RegistryHosts {
		opts := config.HostOptions{HostDir: config.HostDirFromRoot(dir)}
		if creds {
			opts.Credentials = func(host string) (string, string, error) {
				if host == srv.Addr() {
					return testCreds.Username, testCreds.Password, nil
				}
				return "", "", nil
			}
		}
		return config.ConfigureHosts(ctx, opts)
	}
	anonymous := docker.NewResolver(docker.ResolverOptions{Hosts: resolver(false)})
	for _, n := range Names() {
		_, desc, err := anonymous.Resolve(ctx, n)
		if err != nil {
			t.Errorf("resolving %s: %v", n, err)
			continue
		}
		want, _ := srv.Images()[n].Digest()
		if desc.Digest.String() != want.String() {
			t.Errorf("%s resolved to %s, want %s", n, desc.Digest, want)
		}
	}

	private := srv.Addr() + "/" + PrivateImage
	if _, _, err := anonymous.Resolve(ctx, private); err == nil {
		t.Errorf("resolved %s without credentials", private)
	}
	withCreds := docker.NewResolver(docker.ResolverOptions{Hosts: resolver(true)})
	_, desc, err := withCreds.Resolve(ctx, private)
	if err != nil {
		t.Fatalf("resolving %s with credentials: %v", private, err)
	}
	fetcher, err := withCreds.Fetcher(ctx, private)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := fetcher.Fetch(ctx, desc)
	if err != nil {
		t.Fatalf("fetching %s's manifest: %v", private, err)
	}
	rc.Close()
}

func TestWriteHostsDirCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "certs.d")
	if err := WriteHostsDir(dir, "127.0.0.1:5000"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "docker.io", "hosts.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `server = "https://registry-1.docker.io"`; !strings.Contains(string(b), want) {
		t.Errorf("docker.io/hosts.toml lacks %s:\n%s", want, b)
	}
}
