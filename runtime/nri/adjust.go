package nri

import (
	"context"

	"github.com/containerd/nri/pkg/api"
	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/spec"
)

// Adjust applies plugins' adjustment a to spec s in place (env, mounts,
// annotations, devices, resources, hooks, rlimits, namespaces, sysctls,
// CDI devices, ...) with the nri library's generator. CDI devices resolve
// through cdi as the container's own do (spec.WithCDIDevices); a nil cdi
// (CDI off) refuses them. A nil a changes nothing.
func Adjust(ctx context.Context, s *specs.Spec, a *api.ContainerAdjustment, cdi spec.CDIRegistry) error {
	if a == nil {
		return nil
	}
	g := nrigen.SpecGenerator(specEditor{s},
		nrigen.WithCDIDeviceInjector(func(s *specs.Spec, devices []string) error {
			return spec.WithCDIDevices(cdi, devices)(ctx, nil, nil, s)
		}),
	)
	return g.Adjust(a)
}
