package cni

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
)

// Defaults used when the matching Options field is empty.
const (
	DefaultConfDir  = "/etc/cni/net.d"
	DefaultCacheDir = "/var/lib/slipway/cni/cache"
	DefaultSubnet   = "10.88.0.0/16"
	DefaultBridge   = "slipway0"
	// DefaultNetworkName is the name of the network in DefaultConflist.
	DefaultNetworkName = "slipway"
	// DefaultConfFile is the file name WriteDefault writes in ConfDir.
	DefaultConfFile = "10-slipway.conflist"
	// PodInterface is the name of the pod-side interface of the pod network.
	PodInterface = "eth0"
)

// DefaultBinDirs are the plugin directories searched when Options.BinDirs is
// empty, in order.
var DefaultBinDirs = []string{"/opt/cni/bin", "/usr/lib/cni"}

// Options configures a Manager. The zero value means "all defaults".
type Options struct {
	// ConfDir holds the network configs; the first one, in lexical order, of
	// its *.conflist, *.conf and *.json files that parses is used.
	// Default DefaultConfDir. It is created if missing.
	ConfDir string
	// BinDirs are searched, in order, for plugin binaries. They are also
	// passed to plugins as CNI_PATH. Default DefaultBinDirs.
	BinDirs []string
	// CacheDir holds libcni's result cache and slipway's per-pod attachment
	// records (see Teardown). It must survive daemon restarts, so it should
	// not be on a tmpfs that is cleared independently of the pods' netns
	// mounts. Default DefaultCacheDir.
	CacheDir string
	// WriteDefault writes DefaultConflist into ConfDir when it holds no
	// config file at New.
	WriteDefault bool
	// DefaultSubnet is the host-local IPAM subnet of the default conflist:
	// one CIDR, or a comma-separated IPv4 and IPv6 CIDR for dual stack.
	// Default DefaultSubnet.
	DefaultSubnet string
	// DefaultBridge is the bridge device of the default conflist.
	// Default DefaultBridge.
	DefaultBridge string
	// DefaultFirewall adds the firewall plugin to the default conflist: it
	// accepts pod traffic in a CNI-FORWARD chain, which nodes whose FORWARD
	// policy is DROP (beside Docker, say) need. Off by default, as in
	// containerd's and CRI-O's default configs: it runs iptables on every
	// ADD and DEL.
	DefaultFirewall bool
}

// withDefaults returns o with empty fields defaulted, or an InvalidArgument
// error naming the first bad field.
func (o Options) withDefaults() (Options, error) {
	if o.ConfDir == "" {
		o.ConfDir = DefaultConfDir
	}
	if len(o.BinDirs) == 0 {
		o.BinDirs = append([]string(nil), DefaultBinDirs...)
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir
	}
	if o.DefaultSubnet == "" {
		o.DefaultSubnet = DefaultSubnet
	}
	if o.DefaultBridge == "" {
		o.DefaultBridge = DefaultBridge
	}
	for name, dir := range map[string]string{"ConfDir": o.ConfDir, "CacheDir": o.CacheDir} {
		if !filepath.IsAbs(dir) {
			return o, fmt.Errorf("cni options: %s %q must be an absolute path: %w", name, dir, errdefs.ErrInvalidArgument)
		}
	}
	for i, dir := range o.BinDirs {
		if !filepath.IsAbs(dir) {
			return o, fmt.Errorf("cni options: BinDirs[%d] %q must be an absolute path: %w", i, dir, errdefs.ErrInvalidArgument)
		}
	}
	if _, err := parseSubnets(o.DefaultSubnet); err != nil {
		return o, fmt.Errorf("cni options: DefaultSubnet: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if err := validateLinkName(o.DefaultBridge); err != nil {
		return o, fmt.Errorf("cni options: DefaultBridge: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return o, nil
}

// parseSubnets parses "CIDR" or "CIDR,CIDR" with at most one subnet per IP
// family, IPv4 first in the result.
func parseSubnets(s string) ([]*net.IPNet, error) {
	var v4, v6 *net.IPNet
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		ip, n, err := net.ParseCIDR(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", part)
		}
		if !ip.Equal(n.IP) {
			return nil, fmt.Errorf("%q has host bits set (use %s)", part, n)
		}
		ones, bits := n.Mask.Size()
		if bits-ones < 2 {
			return nil, fmt.Errorf("%q is too small for a gateway and a pod", part)
		}
		if n.IP.To4() != nil {
			if v4 != nil {
				return nil, fmt.Errorf("more than one IPv4 subnet in %q", s)
			}
			v4 = n
		} else {
			if v6 != nil {
				return nil, fmt.Errorf("more than one IPv6 subnet in %q", s)
			}
			v6 = n
		}
	}
	var out []*net.IPNet
	for _, n := range []*net.IPNet{v4, v6} {
		if n != nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// validateLinkName checks a Linux network interface name.
func validateLinkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("invalid interface name %q", name)
	case len(name) > 15:
		return fmt.Errorf("interface name %q is longer than 15 bytes", name)
	case strings.ContainsAny(name, "/: \t\n"):
		return fmt.Errorf("interface name %q contains '/', ':' or whitespace", name)
	}
	return nil
}
