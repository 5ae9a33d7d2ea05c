package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/slipway-dev/slipway/cni"
	"github.com/slipway-dev/slipway/runtime/pod"
)

// podRuntime is what the CRI's pod calls run on.
type podRuntime struct {
	store   *pod.Store
	network *cni.Manager
	infra   *pod.Infra
}

// startPods loads the pod records from containerd, prepares the infra
// process's rootfs and the CNI network (writing the default conflist into
// an empty conf dir).
func startPods(ctx context.Context, cfg Config, client *containerd.Client) (*podRuntime, error) {
	store := pod.NewStore(client.SandboxStore())
	if _, err := store.Load(ctx); err != nil {
		return nil, err
	}
	network, err := cni.New(ctx, cni.Options{
		ConfDir:       cfg.CNI.ConfDir,
		BinDirs:       cfg.CNI.BinDirs,
		CacheDir:      filepath.Join(cfg.Root, "cni", "cache"),
		WriteDefault:  true,
		DefaultSubnet: cfg.CNI.DefaultSubnet,
	})
	if err != nil {
		return nil, fmt.Errorf("pod network: %w", err)
	}
	binary, err := infraBinary(cfg.CRI.InfraBinary)
	if err != nil {
		return nil, err
	}
	infra, err := pod.NewInfra(client, binary, filepath.Join(cfg.State, "infra", "rootfs"))
	if err != nil {
		return nil, err
	}
	return &podRuntime{store: store, network: network, infra: infra}, nil
}

// infraBinary finds slipway-infra: the configured path, else beside the
// slipwayd executable, else in PATH.
func infraBinary(configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	if self, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(self), "slipway-infra")
		if _, err := os.Stat(beside); err == nil {
			return beside, nil
		}
	}
	path, err := exec.LookPath("slipway-infra")
	if err != nil {
		return "", fmt.Errorf("slipway-infra not found beside slipwayd or in PATH; set cri.infra_binary: %w", err)
	}
	return path, nil
}
