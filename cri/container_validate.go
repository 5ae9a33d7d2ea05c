package cri

import (
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/slipway-dev/slipway/runtime/spec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// validateContainerRequest checks a CreateContainer request before
// anything is looked up, reserved or created. Errors are InvalidArgument
// (NotImplemented for features slipway lacks) and name the field from the
// request's root ("config.linux.resources.cpu_shares: ..."):
//   - pod_sandbox_id, config, config.metadata.name and config.image.image
//     are required;
//   - labels and annotations follow kube-apiserver's rules (validateMetadataMaps);
//   - log_path is relative and has no ".." leading out of the pod's log
//     directory (the symlinks on the way are checked when the spec is made,
//     with the pod);
//   - everything spec.ValidateConfig checks: mounts (absolute, no "..",
//     known propagation), devices, resources (nothing negative, oom_score_adj
//     in -1000-1000), capabilities, user and groups, namespaces, seccomp
//     (known type, an absolute Localhost profile must exist) and AppArmor.
func validateContainerRequest(req *runtimeapi.CreateContainerRequest) error {
	invalid := func(field string) error {
		return fmt.Errorf("%s is required: %w", field, errdefs.ErrInvalidArgument)
	}
	config := req.GetConfig()
	switch {
	case req.GetPodSandboxId() == "":
		return invalid("pod_sandbox_id")
	case config == nil:
		return invalid("config")
	case config.GetMetadata() == nil:
		return invalid("config.metadata")
	case config.GetMetadata().GetName() == "":
		return invalid("config.metadata.name")
	case config.GetImage().GetImage() == "":
		return invalid("config.image.image")
	}
	if err := validateMetadataMaps("config", config.GetLabels(), config.GetAnnotations()); err != nil {
		return err
	}
	if err := spec.CheckLogPath("", config.GetLogPath()); err != nil {
		return fmt.Errorf("config.%w", err)
	}
	if err := spec.ValidateConfig(config); err != nil {
		// spec names fields from the ContainerConfig.
		return fmt.Errorf("config.%w", err)
	}
	return nil
}
