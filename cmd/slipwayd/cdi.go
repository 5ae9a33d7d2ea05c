package main

import (
	"context"

	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/runtime/spec"
)

// cdiRegistry is the CDI cache over cri.cdi_spec_dirs, or nil when
// cri.enable_cdi is false. Spec files that fail to load are logged (and
// named again in the error of a container that asks for a missing device).
func cdiRegistry(ctx context.Context, cfg CRIConfig) spec.CDIRegistry {
	if !cfg.EnableCDI {
		return nil
	}
	reg := spec.NewCDIRegistry(cfg.CDISpecDirs)
	for file, errs := range reg.GetErrors() {
		for _, err := range errs {
			log.G(ctx).WithError(err).WithField("file", file).Warn("CDI spec not loaded")
		}
	}
	log.G(ctx).WithField("dirs", reg.GetSpecDirectories()).WithField("devices", len(reg.ListDevices())).Info("CDI devices")
	return reg
}
