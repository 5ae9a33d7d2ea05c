package cni

import (
	"encoding/json"
	"fmt"

	"github.com/containernetworking/cni/libcni"
)

// idlePlugins are plugins that act only on one capability arg: without it
// they do nothing but cost their ADD and DEL (portmap spends 30-50 ms per
// call choosing its iptables or nftables backend).
var idlePlugins = map[string]string{"portmap": capPortMappings, "bandwidth": capBandwidth}

// trimIdlePlugins returns list without the idle plugins whose capability
// arg the pod does not carry. Only a plugin configured by nothing but its
// type and capabilities is dropped: one with settings of its own stays.
// The trimmed list is what the pod's record keeps, so DEL runs the same
// plugins as ADD did.
func trimIdlePlugins(list *libcni.NetworkConfigList, capArgs map[string]json.RawMessage) (*libcni.NetworkConfigList, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(list.Bytes, &raw); err != nil {
		return nil, fmt.Errorf("cni: re-reading network %q: %w", list.Name, err)
	}
	var plugins []map[string]json.RawMessage
	if err := json.Unmarshal(raw["plugins"], &plugins); err != nil {
		return nil, fmt.Errorf("cni: re-reading plugins of network %q: %w", list.Name, err)
	}
	kept := plugins[:0:0]
	for _, p := range plugins {
		if !isIdle(p, capArgs) {
			kept = append(kept, p)
		}
	}
	if len(kept) == len(plugins) || len(kept) == 0 {
		return list, nil
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return nil, err
	}
	raw["plugins"] = b
	if b, err = json.Marshal(raw); err != nil {
		return nil, err
	}
	return libcni.ConfListFromBytes(b)
}

func isIdle(plugin map[string]json.RawMessage, capArgs map[string]json.RawMessage) bool {
	var typ string
	if err := json.Unmarshal(plugin["type"], &typ); err != nil {
		return false
	}
	capability, ok := idlePlugins[typ]
	if !ok {
		return false
	}
	if _, carried := capArgs[capability]; carried {
		return false
	}
	for key := range plugin {
		if key != "type" && key != "capabilities" {
			return false
		}
	}
	return true
}
