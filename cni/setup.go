package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// cleanupTimeout bounds the DEL Setup runs after a failed ADD.
const cleanupTimeout = time.Minute

// Result is what Setup reports about the pod's network.
type Result struct {
	// Network is the name of the network the pod was attached to.
	Network string
	// Interface is the pod-side interface of the network (PodInterface).
	Interface string
	// MAC is Interface's hardware address, "" if the plugins did not say.
	MAC string
	// IPs are the pod's addresses on Interface: IPv4 first, then IPv6,
	// each family in the order the plugins returned them.
	IPs []net.IP
	// Gateways are the gateways of IPs, without duplicates, IPv4 first.
	Gateways []net.IP
}

// Setup attaches the pod to the loaded network: ADD of the loopback network
// on lo and of the pod network on PodInterface in pod.NetNS, with CNI_ARGS
// IgnoreUnknown=1, K8S_POD_NAMESPACE, K8S_POD_NAME,
// K8S_POD_INFRA_CONTAINER_ID and K8S_POD_UID, and the capability args
// portMappings, dns and bandwidth that pod carries (each passed only to the
// plugins that declare it).
//
// Bad input is InvalidArgument naming the field; no loaded config is
// FailedPrecondition; a pod already set up (and not torn down) is
// AlreadyExists. Before the first ADD, Setup records what Teardown needs;
// when an ADD fails it runs DEL itself, so a failed Setup leaves nothing
// behind, and if that DEL fails too the record stays for Teardown, which
// the caller should register as its undo before calling Setup anyway.
func (m *Manager) Setup(ctx context.Context, pod Pod) (_ *Result, retErr error) {
	if err := pod.validate(); err != nil {
		return nil, err
	}
	if !isNetNS(pod.NetNS) {
		return nil, invalid("NetNS", "%q is not a network namespace", pod.NetNS)
	}
	n, loadErr := m.snapshot()
	if n == nil {
		return nil, notReady(loadErr)
	}
	capArgs, err := pod.capabilityArgs()
	if err != nil {
		return nil, err
	}

	list, err := trimIdlePlugins(n.list, capArgs)
	if err != nil {
		return nil, err
	}

	unlock := m.locks.lock(pod.ID)
	defer unlock()
	if old, err := readRecord(m.opts.CacheDir, pod.ID); err != nil {
		return nil, fmt.Errorf("cni: %w", err)
	} else if old != nil {
		return nil, fmt.Errorf("cni: pod %s: network already set up; tear it down first: %w", pod.ID, errdefs.ErrAlreadyExists)
	}
	rec := &record{
		ID:             pod.ID,
		NetNS:          pod.NetNS,
		Args:           pod.cniArgs(),
		CapabilityArgs: capArgs,
		Attachments: []attachment{
			{Network: m.loopback.Name, IfName: loopbackIfName, Config: m.loopback.Bytes},
			{Network: list.Name, IfName: PodInterface, Config: list.Bytes},
		},
	}
	if err := writeRecord(m.opts.CacheDir, rec); err != nil {
		return nil, fmt.Errorf("cni: recording network of pod %s: %w", pod.ID, err)
	}
	defer func() {
		if retErr == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := m.teardownLocked(cctx, rec, pod.NetNS); err != nil {
			log.G(ctx).WithError(err).WithField("podsandboxid", pod.ID).
				Warn("DEL after failed CNI ADD failed; Teardown must retry it")
		}
	}()

	// The loopback and the pod network touch different interfaces, so
	// their ADDs run in parallel.
	type outcome struct {
		partial json.RawMessage
		err     error
	}
	lo := make(chan outcome, 1)
	go func() {
		_, partial, err := m.add(ctx, m.loopback, rec, loopbackIfName)
		lo <- outcome{partial, err}
	}()
	res, partial, netErr := m.add(ctx, list, rec, PodInterface)
	loOut := <-lo

	if netErr == nil && loOut.err == nil {
		r, err := toResult(res, PodInterface)
		if err != nil {
			return nil, fmt.Errorf("cni: network %q: %w", n.list.Name, err)
		}
		r.Network = n.list.Name
		return r, nil
	}
	rec.Attachments[0].PartialResult = loOut.partial
	rec.Attachments[1].PartialResult = partial
	if loOut.partial != nil || partial != nil {
		if err := writeRecord(m.opts.CacheDir, rec); err != nil {
			log.G(ctx).WithError(err).WithField("podsandboxid", pod.ID).Warn("recording partial CNI result")
		}
	}
	var errs []error
	if netErr != nil {
		errs = append(errs, fmt.Errorf("cni: setting up network %q for pod %s: %w", n.list.Name, pod.ID, netErr))
	}
	if loOut.err != nil {
		errs = append(errs, fmt.Errorf("cni: setting up loopback for pod %s: %w", pod.ID, loOut.err))
	}
	return nil, errors.Join(errs...)
}

// add runs ADD of list on ifName for the pod of rec. When it fails, partial
// is the result of the last plugin that succeeded, if any.
func (m *Manager) add(ctx context.Context, list *libcni.NetworkConfigList, rec *record, ifName string) (_ types.Result, partial json.RawMessage, _ error) {
	exec := &callExec{Exec: m.exec}
	cfg := libcni.NewCNIConfigWithCacheDir(m.opts.BinDirs, m.opts.CacheDir, exec)
	res, err := cfg.AddNetworkList(ctx, list, rec.runtimeConf(ifName, rec.NetNS))
	if err != nil {
		return nil, exec.lastResult, err
	}
	return res, nil, nil
}

// runtimeConf is the libcni runtime config of the pod of rec on ifName.
func (rec *record) runtimeConf(ifName, netns string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID:    rec.ID,
		NetNS:          netns,
		IfName:         ifName,
		Args:           rec.Args,
		CapabilityArgs: runtimeCapabilityArgs(rec.CapabilityArgs),
	}
}

// toResult extracts the pod's addresses on ifName from a CNI result of any
// version. Addresses not tied to an interface count as the pod's.
func toResult(res types.Result, ifName string) (*Result, error) {
	cur, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("converting CNI result: %w", err)
	}
	out := &Result{Interface: ifName}
	podIf := -1
	for i, iface := range cur.Interfaces {
		if iface.Name == ifName && iface.Sandbox != "" {
			podIf = i
			out.MAC = iface.Mac
			break
		}
	}
	var v4, v6, gw4, gw6 []net.IP
	for _, ipc := range cur.IPs {
		if ipc.Interface != nil && *ipc.Interface != podIf {
			continue
		}
		ip := ipc.Address.IP
		if ip == nil {
			continue
		}
		if ip4 := ip.To4(); ip4 != nil {
			v4 = append(v4, ip4)
			gw4 = appendGateway(gw4, ipc.Gateway)
		} else {
			v6 = append(v6, ip)
			gw6 = appendGateway(gw6, ipc.Gateway)
		}
	}
	out.IPs = append(v4, v6...)
	out.Gateways = append(gw4, gw6...)
	if len(out.IPs) == 0 {
		return nil, fmt.Errorf("no IP address for %s in the CNI result", ifName)
	}
	return out, nil
}

func appendGateway(gws []net.IP, gw net.IP) []net.IP {
	if gw == nil {
		return gws
	}
	if gw4 := gw.To4(); gw4 != nil {
		gw = gw4
	}
	for _, g := range gws {
		if g.Equal(gw) {
			return gws
		}
	}
	return append(gws, gw)
}
