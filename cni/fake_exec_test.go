package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/containernetworking/cni/pkg/version"
)

// fakeExec stands in for the plugin binaries: it records every call and
// answers like the real plugins would, enough for libcni. Errors are
// injected per "COMMAND type" (e.g. "ADD firewall").
type fakeExec struct {
	mu        sync.Mutex
	installed map[string]bool     // plugin types FindInPath finds; nil means all
	fail      map[string]error    // mu guards fail and calls
	versions  map[string][]string // supported versions per type; default version.All
	calls     []fakeCall
	// result is what the first plugin of a list (one without prevResult)
	// returns on ADD; "" means a one-IPv4 result on the pod's interface.
	result string
}

type fakeCall struct {
	Command, Plugin                  string
	ContainerID, NetNS, IfName, Path string
	Args                             string // CNI_ARGS
	Conf                             map[string]any
}

func newFakeExec() *fakeExec { return &fakeExec{fail: map[string]error{}} }

func (f *fakeExec) setFail(key string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fail, key)
	} else {
		f.fail[key] = err
	}
}

// takeCalls returns the calls made so far, VERSION excluded, and forgets them.
func (f *fakeExec) takeCalls() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeCall
	for _, c := range f.calls {
		if c.Command != "VERSION" {
			out = append(out, c)
		}
	}
	f.calls = nil
	return out
}

func (f *fakeExec) FindInPath(plugin string, paths []string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.installed != nil && !f.installed[plugin] {
		return "", fmt.Errorf("failed to find plugin %q in path %s", plugin, paths)
	}
	return filepath.Join("/fake", plugin), nil
}

func (f *fakeExec) Decode(data []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(data)
}

func (f *fakeExec) ExecPlugin(_ context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	c := fakeCall{
		Command:     envValue(environ, "CNI_COMMAND"),
		Plugin:      filepath.Base(pluginPath),
		ContainerID: envValue(environ, "CNI_CONTAINERID"),
		NetNS:       envValue(environ, "CNI_NETNS"),
		IfName:      envValue(environ, "CNI_IFNAME"),
		Path:        envValue(environ, "CNI_PATH"),
		Args:        envValue(environ, "CNI_ARGS"),
	}
	if err := json.Unmarshal(stdin, &c.Conf); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	err := f.fail[c.Command+" "+c.Plugin]
	versions := f.versions[c.Plugin]
	result := f.result
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	switch c.Command {
	case "VERSION":
		if versions == nil {
			return json.Marshal(version.All)
		}
		return json.Marshal(version.PluginSupports(versions...))
	case "ADD":
		if prev, ok := c.Conf["prevResult"]; ok {
			return json.Marshal(prev)
		}
		if c.Plugin == "loopback" {
			return []byte(fmt.Sprintf(`{"cniVersion":"1.0.0","interfaces":[{"name":"lo","sandbox":%q}],"ips":[{"interface":0,"address":"127.0.0.1/8"},{"interface":0,"address":"::1/128"}]}`, c.NetNS)), nil
		}
		if result != "" {
			return []byte(result), nil
		}
		return []byte(fmt.Sprintf(`{"cniVersion":"1.0.0","interfaces":[{"name":"veth1","mac":"aa:aa:aa:aa:aa:01"},{"name":%q,"mac":"aa:aa:aa:aa:aa:02","sandbox":%q}],"ips":[{"interface":1,"address":"10.1.2.3/24","gateway":"10.1.2.1"}]}`, c.IfName, c.NetNS)), nil
	}
	return nil, nil
}

// summary is "COMMAND plugin ifname" per call, for comparing call order.
func summary(calls []fakeCall) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Command+" "+c.Plugin+" "+c.IfName)
	}
	return out
}

// podNetFirst is summary with the pod network's calls (sequential, in
// order) before the loopback's (run in parallel with them).
func podNetFirst(calls []fakeCall) []string {
	var net, lo []fakeCall
	for _, c := range calls {
		if c.IfName == loopbackIfName {
			lo = append(lo, c)
		} else {
			net = append(net, c)
		}
	}
	return summary(append(net, lo...))
}

// sortedSummary is summary sorted: for calls made in parallel.
func sortedSummary(calls []fakeCall) []string {
	s := summary(calls)
	slices.Sort(s)
	return s
}

// callsOf filters calls by command and plugin.
func callsOf(calls []fakeCall, command, plugin string) []fakeCall {
	var out []fakeCall
	for _, c := range calls {
		if c.Command == command && c.Plugin == plugin {
			out = append(out, c)
		}
	}
	return out
}

var errInjected = errors.New("injected failure")

func joinLines(s []string) string { return strings.Join(s, "\n") }
