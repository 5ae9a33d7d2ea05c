package cri

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/pod"
	"github.com/slipway-dev/slipway/runtime/spec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CreateContainer creates a container in a ready pod from an image already
// on the node. A retried call with the same container name returns the
// first call's container ID, waiting for it while it runs.
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	config := req.GetConfig()
	if err := validateContainerRequest(req); err != nil {
		return nil, err
	}
	img, err := s.opts.Images.Get(config.Image.Image)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("image %q is not on the node; pull it first: %w", config.Image.Image, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("config.image.image: %w", err)
	}
	config, imageVolumes, err := s.imageVolumes(config)
	if err != nil {
		return nil, err
	}
	var id string
	err = s.opts.PodRuntime.WhileReady(req.PodSandboxId, func(p pod.Sandbox) error {
		ctx := log.WithLogger(ctx, log.G(ctx).WithField("podsandboxid", p.ID))
		in := spec.Input{
			Config:       config,
			Pod:          p,
			Image:        img.Config,
			CgroupDriver: s.opts.CgroupDriver,
			SeccompRoot:  s.opts.SeccompRoot,
			CDI:          s.opts.CDI,
			UserFiles:    s.userFiles,
			ImageID:      img.ID,
		}
		if in.CDIDevices, err = spec.CDIDeviceNames(p.Config.GetAnnotations(), config); err != nil {
			return err
		}
		if in.InfraPID, err = s.infraPID(ctx, p.ID, p.Infra); err != nil {
			return err
		}
		if in.TargetPID, err = s.targetPID(config); err != nil {
			return err
		}
		c := container.Container{
			PodID:      p.ID,
			Config:     config,
			Image:      config.Image.Image,
			ImageRef:   img.ID,
			CreatedAt:  time.Now(),
			Resources:  config.GetLinux().GetResources(),
			StopSignal: img.Config.Config.StopSignal,
		}
		if dir, rel := p.Config.GetLogDirectory(), config.GetLogPath(); dir != "" && rel != "" {
			c.LogPath = filepath.Join(dir, rel)
		}
		uids, gids := p.UserNamespace()
		id, err = s.opts.Containers.Create(ctx, container.Name(p.Config.GetMetadata(), config.Metadata), container.CreateRequest{
			Container:    c,
			ImageName:    img.References[0],
			DiffIDs:      img.Config.RootFS.DiffIDs,
			ImageVolumes: imageVolumes,
			UIDs:         uids,
			GIDs:         gids,
			SpecOpts: func(id string, rootfs func(context.Context) ([]mount.Mount, error), config *runtimeapi.ContainerConfig) ([]oci.SpecOpts, error) {
				in.ID, in.Rootfs, in.Config = id, rootfs, config
				return spec.Opts(in)
			},
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// infraPID is the pid of the pod's infra process when it has one.
func (s *Server) infraPID(ctx context.Context, podID string, infra bool) (int, error) {
	if !infra {
		return 0, nil
	}
	pid, err := s.opts.PodRuntime.InfraPid(ctx, podID)
	if err != nil {
		return 0, fmt.Errorf("pod %s has no running infra process: %w", podID, err)
	}
	return int(pid), nil
}

// targetPID is the pid of the container whose PID namespace a TARGET-mode
// container joins.
func (s *Server) targetPID(config *runtimeapi.ContainerConfig) (int, error) {
	ns := config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if ns.GetPid() != runtimeapi.NamespaceMode_TARGET {
		return 0, nil
	}
	target, err := s.opts.ContainerStore.Get(ns.GetTargetId())
	if err != nil {
		return 0, fmt.Errorf("config.linux.security_context.namespace_options.target_id: %w", err)
	}
	if target.State != runtimeapi.ContainerState_CONTAINER_RUNNING || target.Pid == 0 {
		return 0, fmt.Errorf("config.linux.security_context.namespace_options.target_id: container %s is not running: %w", target.ID, errdefs.ErrFailedPrecondition)
	}
	return int(target.Pid), nil
}
