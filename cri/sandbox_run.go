package cri

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/cni"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	"github.com/slipway-dev/slipway/runtime/spec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// undoTimeout bounds each cleanup step after a failed RunPodSandbox.
const undoTimeout = 30 * time.Second

// RunPodSandbox creates a ready pod: pinned namespaces (no pause image),
// its shared files, the CNI network and, for a shared PID namespace, the
// infra process. A retried call with the same pod name returns the first
// call's sandbox ID, waiting for it while it runs.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (_ *runtimeapi.RunPodSandboxResponse, retErr error) {
	config := req.GetConfig()
	if err := validatePodConfig(config, s.opts.CgroupDriver); err != nil {
		return nil, err
	}
	id := newID()
	creation, existing, err := s.podNames.Reserve(ctx, pod.Name(config.Metadata), id)
	if err != nil {
		return nil, err
	}
	if creation == nil {
		log.G(ctx).WithField("podsandboxid", existing).Debug("pod exists; returning it")
		return &runtimeapi.RunPodSandboxResponse{PodSandboxId: existing}, nil
	}
	defer func() { creation.Finish(retErr == nil) }()
	ctx = log.WithLogger(ctx, log.G(ctx).WithField("podsandboxid", id))

	p := pod.Sandbox{
		ID:             id,
		Config:         config,
		RuntimeHandler: req.GetRuntimeHandler(),
		CreatedAt:      time.Now(),
		State:          runtimeapi.PodSandboxState_SANDBOX_READY,
		Dir:            filepath.Join(s.opts.PodRootDir, id),
	}
	stateDir := filepath.Join(s.opts.PodStateDir, id)
	undo := func(what string, fn func(context.Context) error) {
		if retErr == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
		defer cancel()
		if err := fn(ctx); err != nil {
			log.G(ctx).WithError(err).Warnf("undoing %s after failed RunPodSandbox", what)
		}
	}

	defer undo("pod dirs", func(context.Context) error {
		return errors.Join(os.RemoveAll(p.Dir), os.RemoveAll(stateDir))
	})
	hostname, err := podHostname(config)
	if err != nil {
		return nil, err
	}
	if err := pod.WriteFiles(p.Dir, config, hostname); err != nil {
		return nil, err
	}

	nsOpts := config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	pinReq := namespaces.Request{Dir: filepath.Join(stateDir, "ns"), Sysctls: config.GetLinux().GetSysctls()}
	if nsOpts.GetNetwork() != runtimeapi.NamespaceMode_NODE {
		pinReq.Kinds = append(pinReq.Kinds, namespaces.Net, namespaces.UTS)
		pinReq.Hostname = hostname
	}
	if nsOpts.GetIpc() != runtimeapi.NamespaceMode_NODE {
		pinReq.Kinds = append(pinReq.Kinds, namespaces.IPC)
	}
	if p.Namespaces, err = namespaces.Pin(pinReq); err != nil {
		return nil, err
	}
	defer undo("namespaces", func(context.Context) error { return unpinAll(p.Namespaces) })

	if nsOpts.GetIpc() != runtimeapi.NamespaceMode_NODE {
		p.ShmPath = filepath.Join(stateDir, "shm")
		defer undo("shm", func(context.Context) error { return pod.UnmountShm(p.ShmPath) })
		if err := pod.MountShm(p.ShmPath); err != nil {
			return nil, err
		}
	}

	// The network and the infra process are independent: set them up at
	// once. ADD can allocate and then fail, so its undo is registered first.
	var setups sync.WaitGroup
	var netErr, infraErr error
	var ips []string
	if !p.HostNetwork() {
		netPod, err := cniPod(p)
		if err != nil {
			return nil, err
		}
		defer undo("pod network", func(ctx context.Context) error { return s.opts.Network.Teardown(ctx, netPod) })
		setups.Go(func() {
			result, err := s.opts.Network.Setup(ctx, netPod)
			if err != nil {
				netErr = fmt.Errorf("setting up pod network: %w", err)
				return
			}
			for _, ip := range result.IPs {
				ips = append(ips, ip.String())
			}
		})
	}
	if sandboxImage := s.opts.Infra.Image(); nsOpts.GetPid() == runtimeapi.NamespaceMode_POD || sandboxImage != "" {
		if err := s.ensureImage(ctx, sandboxImage); err != nil {
			setups.Wait()
			return nil, err
		}
		p.Infra = true
		cgroupsPath, err := spec.CgroupsPath(s.opts.CgroupDriver, config.GetLinux().GetCgroupParent(), id)
		if err != nil {
			setups.Wait()
			return nil, err
		}
		defer undo("infra process", func(ctx context.Context) error { return s.opts.Infra.Remove(ctx, id) })
		infraPod := p
		setups.Go(func() { infraErr = s.opts.Infra.Start(ctx, infraPod, cgroupsPath) })
	}
	setups.Wait()
	if err := errors.Join(netErr, infraErr); err != nil {
		return nil, err
	}
	p.IPs = ips

	if err := s.opts.Pods.Create(ctx, p); err != nil {
		return nil, err
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// ensureImage pulls ref unless the node has it; "" needs nothing.
func (s *Server) ensureImage(ctx context.Context, ref string) error {
	if ref == "" {
		return nil
	}
	if _, err := s.opts.Images.Get(ref); err == nil {
		return nil
	}
	if _, err := s.opts.Images.Pull(ctx, ref, nil); err != nil {
		return fmt.Errorf("pulling sandbox image: %w", err)
	}
	return nil
}

// podHostname is the pod's hostname: the config's, else the node's (as
// containerd and CRI-O do; kubelet always sends one).
func podHostname(config *runtimeapi.PodSandboxConfig) (string, error) {
	if h := config.GetHostname(); h != "" {
		return h, nil
	}
	return os.Hostname()
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

func unpinAll(pinned namespaces.Pinned) error {
	var errs []error
	for _, path := range pinned {
		errs = append(errs, namespaces.Unpin(path))
	}
	return errors.Join(errs...)
}

// newID is a random 64-hex-digit ID, the form containerd's CRI uses.
func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
