package cni

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/containernetworking/cni/pkg/utils"
)

// Pod is what Setup, Teardown and Check need to know about a pod sandbox.
type Pod struct {
	// ID is the sandbox ID, passed as CNI_CONTAINERID and
	// K8S_POD_INFRA_CONTAINER_ID. It keys all network state of the pod.
	ID string
	// Name, Namespace and UID are the pod's metadata, passed in CNI_ARGS.
	Name, Namespace, UID string
	// NetNS is the path of the pod's pinned network namespace (a bind
	// mount). Required by Setup; Teardown falls back to the path recorded
	// at Setup and tolerates a namespace that is already gone.
	NetNS string
	// PortMappings are the pod's hostPorts; mappings with HostPort 0 only
	// declare a container port and are not passed to plugins.
	PortMappings []PortMapping
	// DNS, when not nil, is passed as the "dns" capability.
	DNS *DNS
	// Bandwidth, when not nil, is passed as the "bandwidth" capability.
	Bandwidth *Bandwidth
}

// PortMapping maps HostIP:HostPort on the node to ContainerPort in the pod.
type PortMapping struct {
	HostPort      int32
	ContainerPort int32
	// Protocol is tcp, udp or sctp, in any case; empty means tcp.
	Protocol string
	// HostIP is the node address to listen on; empty means all.
	HostIP string
}

// DNS is the pod's DNS config as plugins with the "dns" capability want it.
type DNS struct {
	Servers, Searches, Options []string
}

// Bandwidth limits the pod's traffic, in bits per second (rates) and bits
// (bursts), as the CNI bandwidth plugin wants them. A rate and its burst
// are set together or not at all.
type Bandwidth struct {
	IngressRate, IngressBurst, EgressRate, EgressBurst uint64
}

// CNI_ARGS keys set for every pod.
const (
	argPodNamespace = "K8S_POD_NAMESPACE"
	argPodName      = "K8S_POD_NAME"
	argPodInfraID   = "K8S_POD_INFRA_CONTAINER_ID"
	argPodUID       = "K8S_POD_UID"
)

// invalid returns an InvalidArgument error about field.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// validateID checks a sandbox ID as libcni will, with an error naming the
// field.
func validateID(id string) error {
	if id == "" {
		return invalid("ID", "must not be empty")
	}
	if err := utils.ValidateContainerID(id); err != nil {
		return invalid("ID", "%q: %s", id, err.Msg)
	}
	return nil
}

// validate checks everything Setup passes to plugins except that NetNS is
// a network namespace (see validateNetNS).
func (p *Pod) validate() error {
	if err := validateID(p.ID); err != nil {
		return err
	}
	for _, f := range []struct{ name, value string }{
		{"Name", p.Name}, {"Namespace", p.Namespace}, {"UID", p.UID},
	} {
		if f.value == "" && f.name != "UID" {
			return invalid(f.name, "must not be empty")
		}
		// CNI_ARGS is "K=V;K=V": these would corrupt it.
		if strings.ContainsAny(f.value, ";=") {
			return invalid(f.name, "%q must not contain ';' or '='", f.value)
		}
	}
	if p.NetNS == "" {
		return invalid("NetNS", "must not be empty")
	}
	if !filepath.IsAbs(p.NetNS) {
		return invalid("NetNS", "%q is not an absolute path", p.NetNS)
	}
	for i, pm := range p.PortMappings {
		field := fmt.Sprintf("PortMappings[%d]", i)
		if pm.ContainerPort < 1 || pm.ContainerPort > 65535 {
			return invalid(field+".ContainerPort", "%d is out of range 1-65535", pm.ContainerPort)
		}
		if pm.HostPort < 0 || pm.HostPort > 65535 {
			return invalid(field+".HostPort", "%d is out of range 0-65535", pm.HostPort)
		}
		if _, err := protocol(pm.Protocol); err != nil {
			return invalid(field+".Protocol", "%v", err)
		}
		if pm.HostIP != "" && net.ParseIP(pm.HostIP) == nil {
			return invalid(field+".HostIP", "%q is not an IP address", pm.HostIP)
		}
	}
	if p.DNS != nil {
		for i, s := range p.DNS.Servers {
			if _, err := netip.ParseAddr(s); err != nil { // allows fe80::1%eth0
				return invalid(fmt.Sprintf("DNS.Servers[%d]", i), "%q is not an IP address", s)
			}
		}
	}
	if b := p.Bandwidth; b != nil {
		if err := validateRateAndBurst("Bandwidth.Ingress", b.IngressRate, b.IngressBurst); err != nil {
			return err
		}
		if err := validateRateAndBurst("Bandwidth.Egress", b.EgressRate, b.EgressBurst); err != nil {
			return err
		}
	}
	return nil
}

// validateRateAndBurst applies the bandwidth plugin's own rules, so a bad
// value fails before any plugin runs.
func validateRateAndBurst(prefix string, rate, burst uint64) error {
	switch {
	case rate != 0 && burst == 0:
		return invalid(prefix+"Burst", "must be set when %sRate is", prefix)
	case rate == 0 && burst != 0:
		return invalid(prefix+"Rate", "must be set when %sBurst is", prefix)
	case burst/8 >= math.MaxUint32:
		return invalid(prefix+"Burst", "%d bits is more than 4 GiB", burst)
	}
	return nil
}

// protocol normalises a port mapping protocol to what portmap wants.
func protocol(p string) (string, error) {
	switch strings.ToLower(p) {
	case "", "tcp":
		return "tcp", nil
	case "udp":
		return "udp", nil
	case "sctp":
		return "sctp", nil
	}
	return "", fmt.Errorf("unknown protocol %q (want tcp, udp or sctp)", p)
}

// cniArgs are the CNI_ARGS of every plugin call for the pod.
func (p *Pod) cniArgs() [][2]string {
	return [][2]string{
		{"IgnoreUnknown", "1"},
		{argPodNamespace, p.Namespace},
		{argPodName, p.Name},
		{argPodInfraID, p.ID},
		{argPodUID, p.UID},
	}
}

// The JSON forms of the capability args, as the CNI conventions document
// them (github.com/containernetworking/cni/blob/main/CONVENTIONS.md).
type (
	cniPortMapping struct {
		HostPort      int32  `json:"hostPort"`
		ContainerPort int32  `json:"containerPort"`
		Protocol      string `json:"protocol"`
		HostIP        string `json:"hostIP,omitempty"`
	}
	cniDNS struct {
		Servers  []string `json:"servers,omitempty"`
		Searches []string `json:"searches,omitempty"`
		Options  []string `json:"options,omitempty"`
	}
	cniBandwidth struct {
		IngressRate  uint64 `json:"ingressRate,omitempty"`
		IngressBurst uint64 `json:"ingressBurst,omitempty"`
		EgressRate   uint64 `json:"egressRate,omitempty"`
		EgressBurst  uint64 `json:"egressBurst,omitempty"`
	}
)

// Capability names of the runtimeConfig keys Setup may pass.
const (
	capPortMappings = "portMappings"
	capDNS          = "dns"
	capBandwidth    = "bandwidth"
)

// capabilityArgs are the capability args of the pod: only the keys that
// carry something. libcni passes each one only to the plugins that declare
// the capability. p must have been validated.
func (p *Pod) capabilityArgs() (map[string]json.RawMessage, error) {
	args := map[string]json.RawMessage{}
	add := func(key string, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		args[key] = data
		return nil
	}
	var pms []cniPortMapping
	for _, pm := range p.PortMappings {
		if pm.HostPort == 0 {
			continue
		}
		proto, _ := protocol(pm.Protocol)
		pms = append(pms, cniPortMapping{
			HostPort:      pm.HostPort,
			ContainerPort: pm.ContainerPort,
			Protocol:      proto,
			HostIP:        pm.HostIP,
		})
	}
	if len(pms) > 0 {
		if err := add(capPortMappings, pms); err != nil {
			return nil, err
		}
	}
	if d := p.DNS; d != nil && len(d.Servers)+len(d.Searches)+len(d.Options) > 0 {
		if err := add(capDNS, cniDNS{Servers: d.Servers, Searches: d.Searches, Options: d.Options}); err != nil {
			return nil, err
		}
	}
	if b := p.Bandwidth; b != nil && *b != (Bandwidth{}) {
		if err := add(capBandwidth, cniBandwidth(*b)); err != nil {
			return nil, err
		}
	}
	return args, nil
}

// runtimeCapabilityArgs converts recorded capability args into libcni's
// form; the raw JSON values are marshalled back verbatim.
func runtimeCapabilityArgs(args map[string]json.RawMessage) map[string]any {
	if len(args) == 0 {
		return nil
	}
	out := make(map[string]any, len(args))
	for k, v := range args {
		out[k] = v
	}
	return out
}

// rawCapabilityArgs converts libcni's cached capability args to the
// recorded form.
func rawCapabilityArgs(args map[string]any) (map[string]json.RawMessage, error) {
	if len(args) == 0 {
		return nil, nil
	}
	out := make(map[string]json.RawMessage, len(args))
	for k, v := range args {
		data, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("capability arg %q: %w", k, err)
		}
		out[k] = data
	}
	return out, nil
}
