package nri

import (
	"errors"

	"github.com/containerd/nri/pkg/api"
	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// errNoCDI is returned for an adjustment that injects CDI devices: slipway
// has no CDI registry.
var errNoCDI = errors.New("CDI devices are not supported")

// Adjust applies plugins' adjustment a to spec s in place (env, mounts,
// annotations, devices, resources, hooks, rlimits, namespaces, sysctls,
// ...) with the nri library's generator. A nil a changes nothing.
func Adjust(s *specs.Spec, a *api.ContainerAdjustment) error {
	if a == nil {
		return nil
	}
	g := nrigen.SpecGenerator(specEditor{s},
		nrigen.WithCDIDeviceInjector(func(*specs.Spec, []string) error { return errNoCDI }),
	)
	return g.Adjust(a)
}
