package e2e

import (
	"context"
	"path/filepath"
	"time"

	"github.com/containerd/nri/pkg/api"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slipway-dev/slipway/test/nriplugin"
)

// nriEnvKey and nriEnvValue are what the test plugin adds to containers'
// environment; nriMountDir is where it mounts a host directory.
const (
	nriEnvKey   = "SLIPWAY_NRI_E2E"
	nriEnvValue = "adjusted-by-plugin"
	nriMountDir = "/nri-e2e"
)

// startNRIPlugin connects the test plugin to the suite slipwayd's NRI
// socket (in its state dir, under the suite's temporary directory), bind
// mounting hostDir at nriMountDir, and waits for its first Synchronize. It
// stays connected across slipwayd restarts until the spec ends.
func startNRIPlugin(hostDir string) *nriplugin.Plugin {
	GinkgoHelper()
	p := &nriplugin.Plugin{
		EnvKey: nriEnvKey, EnvValue: nriEnvValue,
		Mount: &api.Mount{Destination: nriMountDir, Type: "bind", Source: hostDir, Options: []string{"rbind", "ro"}},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	socket := filepath.Join(daemon.State, "nri", "nri.sock")
	go func() { done <- p.Run(ctx, socket, "e2e", "50", 100*time.Millisecond) }()
	DeferCleanup(func() {
		cancel()
		Eventually(done).WithTimeout(30 * time.Second).Should(Receive(BeNil()))
	})
	Eventually(func() int { return len(p.Syncs()) }).WithTimeout(30*time.Second).Should(BeNumerically(">=", 1),
		"the plugin should be synchronized once connected")
	return p
}

// nriEventsOf are the names of the plugin's events about pod podID, in
// order.
func nriEventsOf(p *nriplugin.Plugin, podID string) []string {
	var names []string
	for _, e := range p.Events() {
		if e.PodID == podID {
			names = append(names, e.Name)
		}
	}
	return names
}
