package cni

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

// selfNetNS is a path that is a network namespace without creating one.
const selfNetNS = "/proc/self/ns/net"

func validPod(id string) Pod {
	return Pod{ID: id, Name: "web", Namespace: "default", UID: "uid-" + id, NetNS: selfNetNS}
}

func TestPodValidate(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(*Pod)
		wantField string // "" means valid
	}{
		{name: "valid", mutate: func(*Pod) {}},
		{name: "no uid is fine", mutate: func(p *Pod) { p.UID = "" }},
		{name: "empty ID", mutate: func(p *Pod) { p.ID = "" }, wantField: "ID"},
		{name: "ID with slash", mutate: func(p *Pod) { p.ID = "../etc" }, wantField: "ID"},
		{name: "empty name", mutate: func(p *Pod) { p.Name = "" }, wantField: "Name"},
		{name: "empty namespace", mutate: func(p *Pod) { p.Namespace = "" }, wantField: "Namespace"},
		{name: "semicolon in name", mutate: func(p *Pod) { p.Name = "a;K8S_POD_UID=x" }, wantField: "Name"},
		{name: "equals in uid", mutate: func(p *Pod) { p.UID = "a=b" }, wantField: "UID"},
		{name: "empty netns", mutate: func(p *Pod) { p.NetNS = "" }, wantField: "NetNS"},
		{name: "relative netns", mutate: func(p *Pod) { p.NetNS = "run/netns/x" }, wantField: "NetNS"},
		{name: "container port 0", mutate: func(p *Pod) { p.PortMappings = []PortMapping{{ContainerPort: 0}} }, wantField: "PortMappings[0].ContainerPort"},
		{name: "container port too big", mutate: func(p *Pod) {
			p.PortMappings = []PortMapping{{ContainerPort: 80}, {ContainerPort: 65536}}
		}, wantField: "PortMappings[1].ContainerPort"},
		{name: "host port negative", mutate: func(p *Pod) { p.PortMappings = []PortMapping{{ContainerPort: 80, HostPort: -1}} }, wantField: "PortMappings[0].HostPort"},
		{name: "host port too big", mutate: func(p *Pod) { p.PortMappings = []PortMapping{{ContainerPort: 80, HostPort: 70000}} }, wantField: "PortMappings[0].HostPort"},
		{name: "unknown protocol", mutate: func(p *Pod) { p.PortMappings = []PortMapping{{ContainerPort: 80, Protocol: "icmp"}} }, wantField: "PortMappings[0].Protocol"},
		{name: "protocol any case", mutate: func(p *Pod) { p.PortMappings = []PortMapping{{ContainerPort: 80, HostPort: 8080, Protocol: "SCTP"}} }},
		{name: "bad host IP", mutate: func(p *Pod) { p.PortMappings = []PortMapping{{ContainerPort: 80, HostIP: "localhost"}} }, wantField: "PortMappings[0].HostIP"},
		{name: "DNS server with zone", mutate: func(p *Pod) { p.DNS = &DNS{Servers: []string{"fe80::1%eth0", "10.0.0.10"}} }},
		{name: "bad DNS server", mutate: func(p *Pod) { p.DNS = &DNS{Servers: []string{"10.0.0.10", "dns.local"}} }, wantField: "DNS.Servers[1]"},
		{name: "ingress rate without burst", mutate: func(p *Pod) { p.Bandwidth = &Bandwidth{IngressRate: 1000} }, wantField: "Bandwidth.IngressBurst"},
		{name: "egress burst without rate", mutate: func(p *Pod) { p.Bandwidth = &Bandwidth{EgressBurst: 1000} }, wantField: "Bandwidth.EgressRate"},
		{name: "burst too big", mutate: func(p *Pod) { p.Bandwidth = &Bandwidth{EgressRate: 1, EgressBurst: 8 * math.MaxUint32} }, wantField: "Bandwidth.EgressBurst"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPod("pod1")
			tt.mutate(&p)
			err := p.validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errdefs.IsInvalidArgument(err) || !strings.HasPrefix(err.Error(), tt.wantField+":") {
				t.Fatalf("err = %v, want InvalidArgument starting with %q", err, tt.wantField+":")
			}
		})
	}
}

func TestCapabilityArgs(t *testing.T) {
	tests := []struct {
		name string
		pod  func(*Pod)
		want map[string]string // capability → JSON
	}{
		{name: "nothing", pod: func(*Pod) {}, want: map[string]string{}},
		{name: "port mappings without host port are left out", pod: func(p *Pod) {
			p.PortMappings = []PortMapping{{ContainerPort: 80}}
		}, want: map[string]string{}},
		{name: "port mappings", pod: func(p *Pod) {
			p.PortMappings = []PortMapping{
				{ContainerPort: 80, HostPort: 8080},
				{ContainerPort: 53, HostPort: 5353, Protocol: "UDP", HostIP: "127.0.0.1"},
				{ContainerPort: 9000},
			}
		}, want: map[string]string{capPortMappings: `[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},{"hostPort":5353,"containerPort":53,"protocol":"udp","hostIP":"127.0.0.1"}]`}},
		{name: "empty DNS is left out", pod: func(p *Pod) { p.DNS = &DNS{} }, want: map[string]string{}},
		{name: "DNS", pod: func(p *Pod) {
			p.DNS = &DNS{Servers: []string{"10.0.0.10"}, Searches: []string{"default.svc.cluster.local"}, Options: []string{"ndots:5"}}
		}, want: map[string]string{capDNS: `{"servers":["10.0.0.10"],"searches":["default.svc.cluster.local"],"options":["ndots:5"]}`}},
		{name: "zero bandwidth is left out", pod: func(p *Pod) { p.Bandwidth = &Bandwidth{} }, want: map[string]string{}},
		{name: "bandwidth", pod: func(p *Pod) {
			p.Bandwidth = &Bandwidth{IngressRate: 1000, IngressBurst: 2000}
		}, want: map[string]string{capBandwidth: `{"ingressRate":1000,"ingressBurst":2000}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPod("pod1")
			tt.pod(&p)
			if err := p.validate(); err != nil {
				t.Fatal(err)
			}
			got, err := p.capabilityArgs()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got keys %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if string(got[k]) != v {
					t.Errorf("%s = %s, want %s", k, got[k], v)
				}
			}
		})
	}
}

func TestCNIArgs(t *testing.T) {
	p := validPod("sandbox1")
	got, _ := json.Marshal(p.cniArgs())
	want := `[["IgnoreUnknown","1"],["K8S_POD_NAMESPACE","default"],["K8S_POD_NAME","web"],["K8S_POD_INFRA_CONTAINER_ID","sandbox1"],["K8S_POD_UID","uid-sandbox1"]]`
	if string(got) != want {
		t.Errorf("cniArgs = %s, want %s", got, want)
	}
}
