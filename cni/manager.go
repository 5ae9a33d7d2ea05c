// Package cni attaches pod sandboxes to the pod network with CNI plugins
// (libcni): it loads the network config from a conf dir and watches it,
// writes a default config, and runs ADD, DEL and CHECK for the pod's
// loopback and its network. It knows nothing of gRPC or the CRI: plain Go
// types in and out, errdefs errors.
package cni

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
)

// loopback is the network list that brings up the pod's lo, as containerd's
// go-cni and CRI-O do. cniVersion 0.4.0 is the oldest with CHECK, so
// loopback plugins back to v0.8 (2019) work.
const (
	loopbackNetworkName = "cni-loopback"
	loopbackIfName      = "lo"
	loopbackConfig      = `{"cniVersion":"0.4.0","name":"` + loopbackNetworkName + `","plugins":[{"type":"loopback"}]}`
)

// validateTimeout bounds the plugin VERSION calls of a config check.
const validateTimeout = 10 * time.Second

// Manager attaches pods to the network config loaded from Options.ConfDir.
// Its methods are safe for concurrent use: calls for different pods run in
// parallel, calls for one pod are serialised, and a config reload never
// affects a call in flight (each call uses the config it started with;
// Teardown and Check use the config recorded at Setup).
type Manager struct {
	opts     Options
	exec     invoke.Exec // runs plugins; a fake in unit tests
	loopback *libcni.NetworkConfigList
	locks    podLocks

	mu      sync.RWMutex
	net     *network // mu guards net and loadErr; net is nil when no config is loaded
	loadErr error    // why net is nil
}

// New returns a Manager for opts, with the config in opts.ConfDir loaded if
// there is one. It creates ConfDir and CacheDir when missing and, with
// opts.WriteDefault, writes DefaultConflist when ConfDir holds no config.
// Having no usable config is not an error: Status says why and Watch picks
// up a config added later.
func New(ctx context.Context, opts Options) (*Manager, error) {
	return newManager(ctx, opts, &invoke.DefaultExec{
		RawExec:       &invoke.RawExec{Stderr: os.Stderr},
		PluginDecoder: version.PluginDecoder{},
	})
}

func newManager(ctx context.Context, opts Options, exec invoke.Exec) (*Manager, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	for _, dir := range []struct {
		path string
		perm os.FileMode
	}{{opts.ConfDir, 0o755}, {opts.CacheDir, 0o700}} {
		if err := os.MkdirAll(dir.path, dir.perm); err != nil {
			return nil, fmt.Errorf("cni: %w", err)
		}
	}
	if opts.WriteDefault {
		wrote, err := writeDefaultConfig(opts)
		if err != nil {
			return nil, fmt.Errorf("cni: writing default network config to %s: %w", opts.ConfDir, err)
		}
		if wrote {
			log.G(ctx).WithField("file", DefaultConfFile).WithField("dir", opts.ConfDir).
				Info("wrote default CNI network config")
		}
	}
	loopback, err := libcni.NetworkConfFromBytes([]byte(loopbackConfig))
	if err != nil {
		return nil, err
	}
	m := &Manager{opts: opts, exec: exec, loopback: loopback}
	m.reload(ctx)
	return m, nil
}

// snapshot returns the loaded network, or nil and why there is none.
func (m *Manager) snapshot() (*network, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.net, m.loadErr
}

// reload loads the config from ConfDir again. An unchanged config keeps its
// network (and the result of its plugin check); a changed or removed one is
// replaced. It reports whether the loaded network changed.
func (m *Manager) reload(ctx context.Context) bool {
	n, err := loadNetwork(m.opts.ConfDir)
	m.mu.Lock()
	old := m.net
	if n != nil && old != nil && n.file == old.file && bytes.Equal(n.list.Bytes, old.list.Bytes) {
		m.mu.Unlock()
		return false
	}
	if n == nil && old == nil && errorString(err) == errorString(m.loadErr) {
		m.mu.Unlock()
		return false
	}
	m.net, m.loadErr = n, err
	m.mu.Unlock()

	logger := log.G(ctx).WithField("dir", m.opts.ConfDir)
	if n == nil {
		logger.WithError(err).Warn("no CNI network config loaded; pod network not ready")
		return true
	}
	for _, s := range n.skipped {
		logger.WithField("reason", s).Warn("skipped invalid CNI network config")
	}
	logger.WithField("file", n.file).WithField("network", n.list.Name).Info("loaded CNI network config")
	if m.missingPlugins(n) == nil {
		if err := m.validate(n); err != nil {
			logger.WithError(err).Warn("CNI network config not usable")
		}
	}
	return true
}

func errorString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Status is nil when a network config is loaded, all its plugins (and
// loopback) are in BinDirs and support its cniVersion. Otherwise it says
// why, naming the conf dir, the file or the missing plugins. It is cheap
// enough to back the CRI Status call: after the first success for a config
// it only looks plugins up in BinDirs.
func (m *Manager) Status() error {
	n, loadErr := m.snapshot()
	if n == nil {
		return fmt.Errorf("cni: network not ready: %w", loadErr)
	}
	if err := m.missingPlugins(n); err != nil {
		return err
	}
	return m.validate(n)
}

// missingPlugins is an error naming the plugins of n (and loopback) that
// are not in BinDirs, or nil.
func (m *Manager) missingPlugins(n *network) error {
	var missing []string
	for _, t := range append(n.pluginTypes(), "loopback") {
		if _, err := m.exec.FindInPath(t, m.opts.BinDirs); err != nil && !slices.Contains(missing, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("cni: network %q (%s): plugin %s not found in %s",
		n.list.Name, n.file, strings.Join(missing, ", "), strings.Join(m.opts.BinDirs, ":"))
}

// validate asks each plugin of n and loopback for the CNI versions it
// supports. A success is remembered for the life of n; a failure is not, so
// a fixed plugin is noticed.
func (m *Manager) validate(n *network) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.valid {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), validateTimeout)
	defer cancel()
	cfg := libcni.NewCNIConfigWithCacheDir(m.opts.BinDirs, m.opts.CacheDir, m.exec)
	for _, list := range []*libcni.NetworkConfigList{n.list, m.loopback} {
		if _, err := cfg.ValidateNetworkList(ctx, list); err != nil {
			return fmt.Errorf("cni: network %q (%s): %w", list.Name, n.file, err)
		}
	}
	n.valid = true
	return nil
}

// Network is the name of the loaded network and the file it came from;
// both empty when none is loaded.
func (m *Manager) Network() (name, file string) {
	n, _ := m.snapshot()
	if n == nil {
		return "", ""
	}
	return n.list.Name, n.file
}

// notReady is the error of Setup when no config is loaded.
func notReady(err error) error {
	return fmt.Errorf("cni: network not ready: %v: %w", err, errdefs.ErrFailedPrecondition)
}
