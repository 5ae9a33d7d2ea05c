package main

import (
	"context"
	"fmt"

	"github.com/slipway-dev/slipway/cni"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podNetwork is the CNI manager as the pod runtime's Network.
type podNetwork struct{ m *cni.Manager }

var _ pod.Network = podNetwork{}

func (n podNetwork) Setup(ctx context.Context, p pod.Sandbox) ([]string, error) {
	np, err := cniPod(p)
	if err != nil {
		return nil, err
	}
	result, err := n.m.Setup(ctx, np)
	if err != nil {
		return nil, err
	}
	ips := make([]string, 0, len(result.IPs))
	for _, ip := range result.IPs {
		ips = append(ips, ip.String())
	}
	return ips, nil
}

func (n podNetwork) Teardown(ctx context.Context, p pod.Sandbox) error {
	np, err := cniPod(p)
	if err != nil {
		// Bad annotations cannot have passed Setup; DEL without them.
		np = cni.Pod{ID: p.ID, NetNS: p.Namespaces[namespaces.Net]}
	}
	return n.m.Teardown(ctx, np)
}

// cniPod describes p for the pod network.
func cniPod(p pod.Sandbox) (cni.Pod, error) {
	md := p.Config.GetMetadata()
	bw, err := cni.BandwidthFromAnnotations(p.Config.GetAnnotations())
	if err != nil {
		return cni.Pod{}, fmt.Errorf("config.annotations: %w", err)
	}
	np := cni.Pod{
		ID: p.ID, Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid(),
		NetNS: p.Namespaces[namespaces.Net], Bandwidth: bw,
	}
	for _, pm := range p.Config.GetPortMappings() {
		np.PortMappings = append(np.PortMappings, cni.PortMapping{
			HostPort: pm.HostPort, ContainerPort: pm.ContainerPort, HostIP: pm.HostIp,
			Protocol: protocolName(pm.Protocol),
		})
	}
	if dns := p.Config.GetDnsConfig(); dns != nil {
		np.DNS = &cni.DNS{Servers: dns.Servers, Searches: dns.Searches, Options: dns.Options}
	}
	return np, nil
}

func protocolName(p runtimeapi.Protocol) string {
	switch p {
	case runtimeapi.Protocol_UDP:
		return "udp"
	case runtimeapi.Protocol_SCTP:
		return "sctp"
	}
	return "tcp"
}
