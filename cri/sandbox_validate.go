package cri

import (
	"fmt"
	"net"
	"sort"

	"github.com/containerd/errdefs"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"k8s.io/apimachinery/pkg/util/validation"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// validatePodConfig checks a RunPodSandbox config before anything is
// acquired. Errors are InvalidArgument and name the offending field.
func validatePodConfig(c *runtimeapi.PodSandboxConfig, cgroupDriver string) error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
	}
	if c == nil {
		return invalid("config is required")
	}
	md := c.GetMetadata()
	if md == nil {
		return invalid("config.metadata is required")
	}
	for field, v := range map[string]string{"name": md.Name, "namespace": md.Namespace, "uid": md.Uid} {
		if v == "" {
			return invalid("config.metadata.%s is required", field)
		}
	}
	if h := c.GetHostname(); h != "" {
		if errs := validation.IsDNS1123Label(h); len(errs) > 0 && len(h) <= 64 {
			if errs := validation.IsDNS1123Subdomain(h); len(errs) > 0 {
				return invalid("config.hostname %q: %s", h, errs[0])
			}
		}
		if len(h) > 64 {
			return invalid("config.hostname %q is longer than 64 characters", h)
		}
	}
	for i, s := range c.GetDnsConfig().GetServers() {
		if net.ParseIP(s) == nil {
			return invalid("config.dns_config.servers[%d]: %q is not an IP address", i, s)
		}
	}
	for i, pm := range c.GetPortMappings() {
		if pm.ContainerPort <= 0 || pm.ContainerPort > 65535 {
			return invalid("config.port_mappings[%d].container_port %d is out of range 1-65535", i, pm.ContainerPort)
		}
		if pm.HostPort < 0 || pm.HostPort > 65535 {
			return invalid("config.port_mappings[%d].host_port %d is out of range 0-65535", i, pm.HostPort)
		}
		if _, ok := runtimeapi.Protocol_name[int32(pm.Protocol)]; !ok {
			return invalid("config.port_mappings[%d].protocol %d is unknown", i, pm.Protocol)
		}
		if pm.HostIp != "" && net.ParseIP(pm.HostIp) == nil {
			return invalid("config.port_mappings[%d].host_ip %q is not an IP address", i, pm.HostIp)
		}
	}
	ns := c.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if ns.GetPid() == runtimeapi.NamespaceMode_TARGET {
		return invalid("config.linux.security_context.namespace_options.pid: TARGET is for containers, not pods")
	}
	if err := validateSysctls(c.GetLinux().GetSysctls(), ns); err != nil {
		return err
	}
	if parent := c.GetLinux().GetCgroupParent(); parent != "" && cgroupDriver == "systemd" {
		if !isSystemdSlice(parent) {
			return invalid("config.linux.cgroup_parent %q must be a systemd slice (NAME.slice) with the systemd cgroup driver", parent)
		}
	}
	return nil
}

// validateSysctls allows only namespaced sysctls, and only those whose
// namespace the pod does not share with the node.
func validateSysctls(sysctls map[string]string, ns *runtimeapi.NamespaceOption) error {
	keys := make([]string, 0, len(sysctls))
	for k := range sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		kind, err := namespaces.SysctlKind(key)
		if err != nil {
			return fmt.Errorf("config.linux.sysctls: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		hostNet := ns.GetNetwork() == runtimeapi.NamespaceMode_NODE
		if (kind == namespaces.Net || kind == namespaces.UTS) && hostNet {
			return fmt.Errorf("config.linux.sysctls: %q cannot be set for a pod on the host network: %w", key, errdefs.ErrInvalidArgument)
		}
		if kind == namespaces.IPC && ns.GetIpc() == runtimeapi.NamespaceMode_NODE {
			return fmt.Errorf("config.linux.sysctls: %q cannot be set for a pod in the host IPC namespace: %w", key, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func isSystemdSlice(s string) bool {
	return len(s) > len(".slice") && s[len(s)-len(".slice"):] == ".slice" && s[0] != '/'
}
