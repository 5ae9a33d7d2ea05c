package cni

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containernetworking/cni/libcni"
)

// Teardown detaches the pod from every network Setup attached it to: DEL
// of the pod network and of the loopback, with the config, CNI_ARGS and
// capability args of the ADD (recorded at Setup, whatever the conf dir
// holds now) and libcni's cached result as prevResult. Only pod.ID is
// required; pod.NetNS, when set, overrides the recorded path.
//
// It is idempotent: a pod never set up, or already torn down, succeeds
// without running a plugin. It works after a partial ADD failure. A netns
// that is gone is passed to plugins as "" (the CNI spec allows it on DEL),
// but call Teardown before unmounting the netns: the bridge plugin finds
// the ipMasq rules to delete through the pod's interface, so they leak if
// the netns is gone. A failed DEL keeps the record, so a retry redoes what
// is left.
func (m *Manager) Teardown(ctx context.Context, pod Pod) error {
	if err := validateID(pod.ID); err != nil {
		return err
	}
	unlock := m.locks.lock(pod.ID)
	defer unlock()
	rec, err := readRecord(m.opts.CacheDir, pod.ID)
	if err != nil {
		// Written atomically, so only tampering corrupts it; libcni's cache
		// still knows the complete ADDs.
		log.G(ctx).WithError(err).WithField("podsandboxid", pod.ID).Warn("ignoring unreadable CNI record")
	}
	if rec == nil {
		if rec, err = m.recordFromCache(pod.ID); err != nil {
			return fmt.Errorf("cni: reading libcni cache for pod %s: %w", pod.ID, err)
		}
	}
	if rec == nil {
		return removeRecord(m.opts.CacheDir, pod.ID)
	}
	return m.teardownLocked(ctx, rec, pod.NetNS)
}

// teardownLocked runs DEL of rec's attachments, removes the record when
// all succeed and otherwise keeps the attachments whose DEL
// failed. The caller holds the pod's lock.
func (m *Manager) teardownLocked(ctx context.Context, rec *record, netns string) error {
	if netns == "" {
		netns = rec.NetNS
	}
	if !isNetNS(netns) {
		log.G(ctx).WithField("podsandboxid", rec.ID).WithField("netns", netns).
			Debug("pod netns is gone; running CNI DEL without it")
		netns = ""
	}
	// Attachments are independent (different interfaces), so their DELs
	// run in parallel, as their ADDs do.
	delErrs := make([]error, len(rec.Attachments))
	var wg sync.WaitGroup
	for i, a := range rec.Attachments {
		wg.Go(func() { delErrs[i] = m.del(ctx, rec, a, netns) })
	}
	wg.Wait()
	var errs []error
	var failed []attachment
	for i, a := range slices.Backward(rec.Attachments) {
		if err := delErrs[i]; err != nil {
			errs = append(errs, fmt.Errorf("cni: tearing down network %q (%s) of pod %s: %w", a.Network, a.IfName, rec.ID, err))
			failed = append(failed, a)
		}
	}
	if len(errs) == 0 {
		if err := removeRecord(m.opts.CacheDir, rec.ID); err != nil {
			return fmt.Errorf("cni: %w", err)
		}
		return nil
	}
	slices.Reverse(failed)
	rec.Attachments = failed
	if err := writeRecord(m.opts.CacheDir, rec); err != nil {
		errs = append(errs, fmt.Errorf("cni: %w", err))
	}
	return errors.Join(errs...)
}

// del runs DEL of one attachment.
func (m *Manager) del(ctx context.Context, rec *record, a attachment, netns string) error {
	list, err := libcni.NetworkConfFromBytes(a.Config)
	if err != nil {
		return fmt.Errorf("recorded config: %w", err)
	}
	exec := &callExec{Exec: m.exec, prevResult: a.PartialResult}
	cfg := libcni.NewCNIConfigWithCacheDir(m.opts.BinDirs, m.opts.CacheDir, exec)
	return cfg.DelNetworkList(ctx, list, rec.runtimeConf(a.IfName, netns))
}

// recordFromCache rebuilds a record from libcni's cache of complete ADDs,
// for a pod whose record is missing or unreadable; nil if libcni knows no
// attachment of the pod either.
func (m *Manager) recordFromCache(id string) (*record, error) {
	cfg := libcni.NewCNIConfigWithCacheDir(m.opts.BinDirs, m.opts.CacheDir, m.exec)
	atts, err := cfg.GetCachedAttachments(id)
	if err != nil || len(atts) == 0 {
		return nil, err
	}
	rec := &record{ID: id}
	// In Setup's order: the loopback first.
	slices.SortStableFunc(atts, func(a, b *libcni.NetworkAttachment) int {
		return boolRank(b.Network == loopbackNetworkName) - boolRank(a.Network == loopbackNetworkName)
	})
	for _, a := range atts {
		rec.NetNS = a.NetNS
		rec.Args = a.CniArgs
		rec.CapabilityArgs, err = rawCapabilityArgs(a.CapabilityArgs)
		if err != nil {
			return nil, err
		}
		rec.Attachments = append(rec.Attachments, attachment{Network: a.Network, IfName: a.IfName, Config: a.Config})
	}
	return rec, nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Check runs CHECK of every network the pod is attached to, with the
// recorded config; pod.NetNS, when set, overrides the recorded path. A pod
// that was never set up (or was torn down) is NotFound.
func (m *Manager) Check(ctx context.Context, pod Pod) error {
	if err := validateID(pod.ID); err != nil {
		return err
	}
	unlock := m.locks.lock(pod.ID)
	defer unlock()
	rec, err := readRecord(m.opts.CacheDir, pod.ID)
	if err != nil {
		return fmt.Errorf("cni: %w", err)
	}
	if rec == nil {
		return fmt.Errorf("cni: pod %s has no network: %w", pod.ID, errdefs.ErrNotFound)
	}
	netns := pod.NetNS
	if netns == "" {
		netns = rec.NetNS
	}
	for _, a := range rec.Attachments {
		if a.PartialResult != nil {
			return fmt.Errorf("cni: network %q of pod %s was only partly set up", a.Network, pod.ID)
		}
		list, err := libcni.NetworkConfFromBytes(a.Config)
		if err != nil {
			return fmt.Errorf("cni: network %q of pod %s: recorded config: %w", a.Network, pod.ID, err)
		}
		cfg := libcni.NewCNIConfigWithCacheDir(m.opts.BinDirs, m.opts.CacheDir, m.exec)
		if err := cfg.CheckNetworkList(ctx, list, rec.runtimeConf(a.IfName, netns)); err != nil {
			return fmt.Errorf("cni: checking network %q (%s) of pod %s: %w", a.Network, a.IfName, pod.ID, err)
		}
	}
	return nil
}

// Attached lists the IDs of the pods that have network state here: a
// record of Setup or a libcni cache entry. After a crash, the IDs the
// caller no longer knows are pods to Teardown.
func (m *Manager) Attached() ([]string, error) {
	ids, err := recordIDs(m.opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("cni: %w", err)
	}
	cfg := libcni.NewCNIConfigWithCacheDir(m.opts.BinDirs, m.opts.CacheDir, m.exec)
	atts, err := cfg.GetCachedAttachments("")
	if err != nil {
		return nil, fmt.Errorf("cni: %w", err)
	}
	for _, a := range atts {
		if !slices.Contains(ids, a.ContainerID) {
			ids = append(ids, a.ContainerID)
		}
	}
	slices.Sort(ids)
	return ids, nil
}
