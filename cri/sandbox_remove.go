package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RemovePodSandbox stops the pod if it runs and removes everything of it:
// infra container, network (DEL again, idempotent), namespace pins, files
// and its record. Removing a missing pod succeeds.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	p, unlock, err := s.lockPod(req.GetPodSandboxId())
	if err != nil || unlock == nil {
		return &runtimeapi.RemovePodSandboxResponse{}, err
	}
	defer unlock()
	if err := s.stopPodLocked(ctx, p.ID); err != nil {
		return nil, err
	}
	if p, err = s.opts.Pods.Get(p.ID); errdefs.IsNotFound(err) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	ctx = log.WithLogger(ctx, log.G(ctx).WithField("podsandboxid", p.ID))
	for _, c := range s.opts.ContainerStore.InPod(p.ID) {
		if err := s.removeContainer(ctx, c); err != nil {
			return nil, fmt.Errorf("removing container %s: %w", c.ID, err)
		}
	}
	if p.Infra {
		if err := s.opts.Infra.Remove(ctx, p.ID); err != nil {
			return nil, fmt.Errorf("removing infra container: %w", err)
		}
	}
	if err := s.teardownNetwork(ctx, p); err != nil {
		return nil, err
	}
	if err := unpinAll(p.Namespaces); err != nil {
		return nil, err
	}
	if err := errors.Join(os.RemoveAll(p.Dir), os.RemoveAll(filepath.Join(s.opts.PodStateDir, p.ID))); err != nil {
		return nil, fmt.Errorf("removing pod files: %w", err)
	}
	if err := s.opts.Pods.Delete(ctx, p.ID); err != nil {
		return nil, err
	}
	s.podNames.Release(p.Name(), p.ID)
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}
