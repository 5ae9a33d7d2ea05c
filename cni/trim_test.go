package cni

import (
	"encoding/json"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

func TestTrimIdlePlugins(t *testing.T) {
	list, err := libcni.ConfListFromBytes([]byte(`{"cniVersion":"1.0.0","name":"n","plugins":[
		{"type":"bridge","bridge":"b0"},
		{"type":"portmap","capabilities":{"portMappings":true}},
		{"type":"bandwidth","capabilities":{"bandwidth":true}},
		{"type":"portmap","capabilities":{"portMappings":true},"snat":false}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	types := func(l *libcni.NetworkConfigList) []string {
		var out []string
		for _, p := range l.Plugins {
			out = append(out, p.Network.Type)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		args map[string]json.RawMessage
		want []string
	}{
		{"no args: idle plugins dropped, configured one kept", nil, []string{"bridge", "portmap"}},
		{"port mappings keep portmap", map[string]json.RawMessage{capPortMappings: json.RawMessage(`[]`)}, []string{"bridge", "portmap", "portmap"}},
		{"bandwidth keeps bandwidth", map[string]json.RawMessage{capBandwidth: json.RawMessage(`{}`)}, []string{"bridge", "bandwidth", "portmap"}},
	} {
		got, err := trimIdlePlugins(list, tc.args)
		if err != nil {
			t.Fatal(err)
		}
		if g := types(got); len(g) != len(tc.want) || func() bool {
			for i := range g {
				if g[i] != tc.want[i] {
					return true
				}
			}
			return false
		}() {
			t.Errorf("%s: plugins %v, want %v", tc.name, g, tc.want)
		}
		if got.Name != "n" || got.CNIVersion != "1.0.0" {
			t.Errorf("%s: lost name or version: %q %q", tc.name, got.Name, got.CNIVersion)
		}
	}
}
