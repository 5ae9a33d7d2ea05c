package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/utils"
)

// confExtensions are the file extensions of network configs in ConfDir.
var confExtensions = []string{".conflist", ".conf", ".json"}

// network is one loaded network config list. list is immutable once loaded;
// its Bytes are self-contained (every plugin inlined), so they alone are
// enough to run DEL later, whatever happens to the conf dir.
type network struct {
	file    string   // the file it was loaded from
	skipped []string // files before file that did not parse, with why
	list    *libcni.NetworkConfigList

	mu    sync.Mutex // mu guards valid
	valid bool       // the plugins answered VERSION with support for list.CNIVersion
}

// loadNetwork loads the first config in dir, in lexical order of file
// names, that parses. Files that do not parse are skipped (as kubelet's and
// CRI-O's loaders do) and named in the error when none is left.
func loadNetwork(dir string) (*network, error) {
	files, err := libcni.ConfFiles(dir, confExtensions)
	if err != nil {
		return nil, fmt.Errorf("reading network config dir %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no network config found in %s", dir)
	}
	sort.Strings(files)
	var errs []string
	for _, file := range files {
		list, err := loadConfFile(file)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", filepath.Base(file), err))
			continue
		}
		n := &network{file: file, list: list}
		if len(errs) > 0 {
			n.skipped = errs
		}
		return n, nil
	}
	return nil, fmt.Errorf("no valid network config in %s: %s", dir, strings.Join(errs, "; "))
}

// loadConfFile parses one config file. A file holding a single plugin
// config (the .conf format) becomes a one-plugin list; so does a .conf or
// .json file holding a list, which is taken as a list.
func loadConfFile(file string) (*libcni.NetworkConfigList, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	var list *libcni.NetworkConfigList
	if _, isList := probe["plugins"]; isList || filepath.Ext(file) == ".conflist" {
		// NetworkConfFromFile also loads plugins kept in <dir>/<name>/*.conf.
		if list, err = libcni.NetworkConfFromFile(file); err != nil {
			return nil, err
		}
	} else {
		conf, err := libcni.NetworkPluginConfFromBytes(data)
		if err != nil {
			return nil, err
		}
		if list, err = libcni.ConfListFromConf(conf); err != nil {
			return nil, err
		}
	}
	if err := utils.ValidateNetworkName(list.Name); err != nil {
		return nil, fmt.Errorf("network name %q: %s", list.Name, err.Msg)
	}
	if list.Name == loopbackNetworkName {
		return nil, fmt.Errorf("network name %q is reserved for the pod's loopback", list.Name)
	}
	if len(list.Plugins) == 0 {
		return nil, errors.New("no plugins")
	}
	return inlinePlugins(list)
}

// inlinePlugins returns list with every plugin config inlined in its Bytes
// and loadOnlyInlinedPlugins set, so the Bytes parse back to the same list
// without reading any file.
func inlinePlugins(list *libcni.NetworkConfigList) (*libcni.NetworkConfigList, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(list.Bytes, &raw); err != nil {
		return nil, err
	}
	plugins := make([]json.RawMessage, len(list.Plugins))
	for i, p := range list.Plugins {
		plugins[i] = p.Bytes
	}
	var err error
	if raw["plugins"], err = json.Marshal(plugins); err != nil {
		return nil, err
	}
	raw["loadOnlyInlinedPlugins"] = json.RawMessage("true")
	data, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	return libcni.NetworkConfFromBytes(data)
}

// pluginTypes are the plugin binaries n needs, in list order, without
// duplicates.
func (n *network) pluginTypes() []string {
	var types []string
	seen := map[string]bool{}
	for _, p := range n.list.Plugins {
		if t := p.Network.Type; !seen[t] {
			seen[t] = true
			types = append(types, t)
		}
	}
	return types
}

// DefaultConflist is the network config written when the conf dir holds
// none, built from opts' DefaultSubnet, DefaultBridge and DefaultFirewall
// (defaulted when empty): a bridge (gateway, IP masquerade, hairpin) with
// host-local IPAM on the subnets and a default route per IP family, then
// portmap (hostPorts), firewall when asked for, and bandwidth (the
// kubernetes.io bandwidth annotations), cniVersion 1.0.0, named
// DefaultNetworkName. containerd and CRI-O users find the same bridge and
// portmap on their nodes.
func DefaultConflist(opts Options) ([]byte, error) {
	if opts.DefaultSubnet == "" {
		opts.DefaultSubnet = DefaultSubnet
	}
	if opts.DefaultBridge == "" {
		opts.DefaultBridge = DefaultBridge
	}
	nets, err := parseSubnets(opts.DefaultSubnet)
	if err != nil {
		return nil, fmt.Errorf("DefaultSubnet: %w", err)
	}
	if err := validateLinkName(opts.DefaultBridge); err != nil {
		return nil, fmt.Errorf("DefaultBridge: %w", err)
	}
	type obj = map[string]any
	var ranges, routes []any
	for _, n := range nets {
		ranges = append(ranges, []any{obj{"subnet": n.String()}})
		dst := "0.0.0.0/0"
		if n.IP.To4() == nil {
			dst = "::/0"
		}
		routes = append(routes, obj{"dst": dst})
	}
	plugins := []any{
		obj{
			"type":        "bridge",
			"bridge":      opts.DefaultBridge,
			"isGateway":   true,
			"ipMasq":      true,
			"hairpinMode": true,
			"ipam": obj{
				"type":   "host-local",
				"ranges": ranges,
				"routes": routes,
			},
		},
		obj{"type": "portmap", "capabilities": obj{"portMappings": true}},
	}
	if opts.DefaultFirewall {
		plugins = append(plugins, obj{"type": "firewall"})
	}
	plugins = append(plugins, obj{"type": "bandwidth", "capabilities": obj{"bandwidth": true}})
	conf := obj{
		"cniVersion": "1.0.0",
		"name":       DefaultNetworkName,
		"plugins":    plugins,
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// writeDefaultConfig writes DefaultConflist(opts) as DefaultConfFile into
// opts.ConfDir unless it already holds a config file. It reports whether it
// wrote.
func writeDefaultConfig(opts Options) (bool, error) {
	dir := opts.ConfDir
	files, err := libcni.ConfFiles(dir, confExtensions)
	if err != nil {
		return false, err
	}
	if len(files) > 0 {
		return false, nil
	}
	data, err := DefaultConflist(opts)
	if err != nil {
		return false, err
	}
	// Written under a name the loader ignores, then renamed, so a watcher
	// never sees half a file.
	tmp, err := os.CreateTemp(dir, "."+DefaultConfFile+".*.tmp")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return false, err
	}
	// Synced before and after the rename: after a power loss the conf
	// dir holds the whole file or none, never an empty one.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, DefaultConfFile)); err != nil {
		return false, err
	}
	return true, syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
