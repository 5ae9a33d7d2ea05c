package cri

import (
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/containerd/errdefs"
	"github.com/slipway-dev/slipway/cni"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	"github.com/slipway-dev/slipway/runtime/spec"
	"k8s.io/apimachinery/pkg/util/validation"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// validatePodConfig checks a RunPodSandbox config before anything is
// acquired. Errors are InvalidArgument and name the offending field:
// metadata (name, namespace and uid required, CNI_ARGS-safe), labels and
// annotations (validateMetadataMaps, bandwidth annotations), an absolute
// log_directory without "..", hostname, DNS servers and words, port
// mappings, namespace modes, sysctls, the seccomp profile (known type; an
// absolute Localhost profile must exist), resources and overhead (nothing
// negative, spec.CheckResources) and the cgroup parent.
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
	for _, f := range []struct{ field, v string }{{"name", md.Name}, {"namespace", md.Namespace}, {"uid", md.Uid}} {
		if f.v == "" {
			return invalid("config.metadata.%s is required", f.field)
		}
		// The pod network gets them in CNI_ARGS, "K=V;K=V".
		if strings.ContainsAny(f.v, ";=\x00") {
			return invalid("config.metadata.%s %q must not contain ';', '=' or NUL", f.field, f.v)
		}
	}
	if err := validateMetadataMaps("config", c.GetLabels(), c.GetAnnotations()); err != nil {
		return err
	}
	if err := validateBandwidth(c.GetAnnotations()); err != nil {
		return err
	}
	if dir := c.GetLogDirectory(); dir != "" {
		if !filepath.IsAbs(dir) || strings.ContainsRune(dir, 0) || slices.Contains(strings.Split(dir, "/"), "..") {
			return invalid("config.log_directory %q is not an absolute path without \"..\" elements", dir)
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
	// Each is a word of a resolv.conf line: a blank would split it, a line
	// break add a line.
	for _, f := range []struct {
		field string
		words []string
	}{{"searches", c.GetDnsConfig().GetSearches()}, {"options", c.GetDnsConfig().GetOptions()}} {
		for i, w := range f.words {
			if w == "" || strings.IndexFunc(w, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
				return invalid("config.dns_config.%s[%d]: %q is not one word", f.field, i, w)
			}
		}
	}
	for i, pm := range c.GetPortMappings() {
		if pm == nil {
			return invalid("config.port_mappings[%d] is null", i)
		}
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
	uids, _, err := pod.IDMappings(ns.GetUsernsOptions())
	if err != nil {
		return fmt.Errorf("config.%w", err)
	}
	if uids != nil && ns.GetPid() == runtimeapi.NamespaceMode_NODE {
		return invalid("config.linux.security_context.namespace_options.pid: NODE is not allowed with a user namespace of the pod's own (%s)", pod.UsernsField)
	}
	if err := validateSysctls(c.GetLinux().GetSysctls(), ns); err != nil {
		return err
	}
	if err := spec.CheckPodSecurity(c.GetLinux().GetSecurityContext()); err != nil {
		return fmt.Errorf("config.%w", err)
	}
	if err := spec.CheckResources("config.linux.resources", c.GetLinux().GetResources()); err != nil {
		return err
	}
	if err := spec.CheckResources("config.linux.overhead", c.GetLinux().GetOverhead()); err != nil {
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

// maxMetadataBytes is kube-apiserver's limit on an object's annotations,
// keys and values together (TotalAnnotationSizeLimitB, 256 KiB).
const maxMetadataBytes = 256 << 10

// validateMetadataMaps checks a pod's or container's labels and
// annotations as kube-apiserver checks a pod's, so that anything kubelet
// derives from a valid pod passes: every key is a qualified name (an
// optional DNS subdomain prefix of at most 253 characters and "/", then a
// name of at most 63; annotation keys case-insensitively), and the
// annotations, keys and values, are at most 256 KiB. Labels get the same
// size limit; their values are not held to the API's 63 characters, since
// kubelet puts pod names (up to 253) in them.
func validateMetadataMaps(parent string, labels, annotations map[string]string) error {
	for _, m := range []struct {
		field string
		kv    map[string]string
		fold  bool
	}{{"labels", labels, false}, {"annotations", annotations, true}} {
		field := parent + "." + m.field
		size := 0
		for _, k := range slices.Sorted(maps.Keys(m.kv)) {
			size += len(k) + len(m.kv[k])
			key := k
			if m.fold {
				key = strings.ToLower(k)
			}
			if errs := validation.IsQualifiedName(key); len(errs) > 0 {
				return fmt.Errorf("%s: key %q: %s: %w", field, truncate(k, 80), errs[0], errdefs.ErrInvalidArgument)
			}
		}
		if size > maxMetadataBytes {
			return fmt.Errorf("%s: %d bytes of keys and values are more than the %d kube-apiserver allows: %w",
				field, size, maxMetadataBytes, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// bandwidthQuantity is the form of a bandwidth annotation's value that
// resource.ParseQuantity parses in bounded time: a decimal of at most 64
// characters with a suffix or an exponent of at most two digits. A long
// mantissa with an exponent such as e-99999999 keeps ParseQuantity
// rounding with numbers of millions of digits, for minutes (found while
// writing FuzzValidatePodConfig; kubelet's pods can carry any annotation).
var bandwidthQuantity = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,2}|[KMGTPE]i|[numkMGTPE])?$`)

// validateBandwidth checks the pod's bandwidth annotations, which the pod
// network reads (cni.BandwidthFromAnnotations).
func validateBandwidth(annotations map[string]string) error {
	for _, key := range []string{cni.IngressBandwidthAnnotation, cni.EgressBandwidthAnnotation} {
		if v, ok := annotations[key]; ok && (len(v) > 64 || !bandwidthQuantity.MatchString(v)) {
			return fmt.Errorf("config.annotations: %s: %q is not a quantity such as 10M: %w", key, truncate(v, 80), errdefs.ErrInvalidArgument)
		}
	}
	if _, err := cni.BandwidthFromAnnotations(annotations); err != nil {
		return fmt.Errorf("config.annotations: %w", err)
	}
	return nil
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func isSystemdSlice(s string) bool {
	return len(s) > len(".slice") && s[len(s)-len(".slice"):] == ".slice" && s[0] != '/'
}

// checkUserNamespaceSupport refuses a pod with its own user namespace
// (a valid config) on a node without the support (FailedPrecondition).
func checkUserNamespaceSupport(c *runtimeapi.PodSandboxConfig, supported bool) error {
	uids, _, _ := pod.IDMappings(c.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions())
	if uids != nil && !supported {
		return fmt.Errorf("config.%s: this node cannot ID-map the snapshotter's layers (the runtime handler reports no user_namespaces feature): %w",
			pod.UsernsField, errdefs.ErrFailedPrecondition)
	}
	return nil
}
