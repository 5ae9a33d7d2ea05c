// Package pod keeps pod sandboxes: their records on containerd (the single
// source of truth) with an in-memory index, the files a pod's containers
// share (resolv.conf, hostname, /dev/shm), and the infra process that holds
// a shared PID namespace. Network setup is the caller's (package cni).
package pod

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/slipway-dev/slipway/runtime/namespaces"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Sandbox is one pod sandbox. Values are copies: change a Sandbox through
// the Store.
type Sandbox struct {
	ID     string
	Config *runtimeapi.PodSandboxConfig
	// RuntimeHandler is the CRI runtime handler the pod was created with.
	RuntimeHandler string
	CreatedAt      time.Time
	State          runtimeapi.PodSandboxState
	// Namespaces are the pinned namespace files; a kind is absent when the
	// pod shares the host's.
	Namespaces namespaces.Pinned
	// IPs are the pod's addresses, IPv4 first; empty for host network.
	IPs []string
	// Dir holds the pod's shared files (resolv.conf, hostname).
	Dir string
	// ShmPath is the tmpfs mounted as the pod's /dev/shm; empty with host IPC.
	ShmPath string
	// Infra is true when an infra process holds the pod's PID namespace.
	Infra bool
	// ShimGroup is the shim group its containers run in (package
	// shimgroup); empty when the pod has a shim of its own.
	ShimGroup string
}

// Name is the unique name kubelet's metadata gives the pod (CRI-O and
// containerd use the same form).
func Name(md *runtimeapi.PodSandboxMetadata) string {
	return fmt.Sprintf("k8s_POD_%s_%s_%s_%d", md.GetName(), md.GetNamespace(), md.GetUid(), md.GetAttempt())
}

// Name is the sandbox's unique name.
func (s Sandbox) Name() string { return Name(s.Config.GetMetadata()) }

// HostNetwork reports whether the pod uses the node's network namespace.
func (s Sandbox) HostNetwork() bool {
	return s.Config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE
}

// record is the persisted form of a Sandbox.
type record struct {
	ID             string            `json:"id"`
	Config         json.RawMessage   `json:"config"`
	RuntimeHandler string            `json:"runtimeHandler,omitempty"`
	CreatedAt      time.Time         `json:"createdAt"`
	Ready          bool              `json:"ready"`
	Namespaces     map[string]string `json:"namespaces,omitempty"`
	IPs            []string          `json:"ips,omitempty"`
	Dir            string            `json:"dir"`
	ShmPath        string            `json:"shmPath,omitempty"`
	Infra          bool              `json:"infra,omitempty"`
	ShimGroup      string            `json:"shimGroup,omitempty"`
}

func (s Sandbox) marshal() ([]byte, error) {
	config, err := protojson.Marshal(s.Config)
	if err != nil {
		return nil, fmt.Errorf("encoding pod config: %w", err)
	}
	r := record{
		ID: s.ID, Config: config, RuntimeHandler: s.RuntimeHandler, CreatedAt: s.CreatedAt,
		Ready: s.State == runtimeapi.PodSandboxState_SANDBOX_READY, IPs: s.IPs, Dir: s.Dir,
		ShmPath: s.ShmPath, Infra: s.Infra, ShimGroup: s.ShimGroup, Namespaces: map[string]string{},
	}
	for k, p := range s.Namespaces {
		r.Namespaces[string(k)] = p
	}
	return json.Marshal(r)
}

func unmarshalSandbox(b []byte) (Sandbox, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return Sandbox{}, fmt.Errorf("decoding pod record: %w", err)
	}
	config := &runtimeapi.PodSandboxConfig{}
	if err := protojson.Unmarshal(r.Config, config); err != nil {
		return Sandbox{}, fmt.Errorf("decoding pod config: %w", err)
	}
	s := Sandbox{
		ID: r.ID, Config: config, RuntimeHandler: r.RuntimeHandler, CreatedAt: r.CreatedAt,
		State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY, IPs: r.IPs, Dir: r.Dir,
		ShmPath: r.ShmPath, Infra: r.Infra, ShimGroup: r.ShimGroup, Namespaces: namespaces.Pinned{},
	}
	if r.Ready {
		s.State = runtimeapi.PodSandboxState_SANDBOX_READY
	}
	for k, p := range r.Namespaces {
		s.Namespaces[namespaces.Kind(k)] = p
	}
	return s, nil
}
