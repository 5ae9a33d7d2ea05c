package builder

import (
	"context"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
)

// registryHosts resolves a registry host ("docker.io", "127.0.0.1:5000")
// to the endpoints to try, from the containerd-style hosts directory dir
// (HOST/hosts.toml: mirrors, plain http, CA files), exactly as CRI pulls do.
// An empty dir, or a host without a hosts.toml, means the host itself over
// https (plain http for localhost). BuildKit replaces each endpoint's
// authorizer with one that asks the build's session for credentials.
func registryHosts(dir string) docker.RegistryHosts {
	opts := config.HostOptions{}
	if dir != "" {
		opts.HostDir = config.HostDirFromRoot(dir)
	}
	return config.ConfigureHosts(context.Background(), opts)
}
