package cni

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
)

// callExec wraps the Manager's invoke.Exec for the plugin calls of one
// network list in one Setup or Teardown; it is not shared between
// goroutines.
//
// libcni caches a list's result only when the whole list succeeds, so after
// a partial ADD the DEL plugins get no prevResult, and plugins that need it
// to find their state (firewall removes its rules by the pod's IPs) leak.
// callExec closes that gap: on ADD it keeps the output of the last plugin
// that succeeded; on DEL it gives plugins prevResult when libcni had none.
type callExec struct {
	invoke.Exec
	// lastResult is the stdout of the last ADD that succeeded.
	lastResult []byte
	// prevResult, when set, is injected into DEL stdin without one.
	prevResult json.RawMessage
}

func (e *callExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	cmd := envValue(environ, "CNI_COMMAND")
	if cmd == "DEL" && len(e.prevResult) > 0 {
		stdin = injectPrevResult(stdin, e.prevResult)
	}
	out, err := e.Exec.ExecPlugin(ctx, pluginPath, stdin, environ)
	if err == nil && cmd == "ADD" {
		e.lastResult = withCNIVersion(out, stdin)
	}
	return out, err
}

// envValue is the value of key in environ, "" if unset.
func envValue(environ []string, key string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(environ[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// injectPrevResult adds prevResult to a plugin config that has none and
// whose cniVersion has prevResult on DEL (0.4.0 and later). It returns conf
// unchanged when it cannot.
func injectPrevResult(conf []byte, prev json.RawMessage) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(conf, &m) != nil {
		return conf
	}
	if _, ok := m["prevResult"]; ok {
		return conf
	}
	var v string
	if json.Unmarshal(m["cniVersion"], &v) != nil {
		return conf
	}
	if ok, err := version.GreaterThanOrEqualTo(v, "0.4.0"); err != nil || !ok {
		return conf
	}
	m["prevResult"] = prev
	out, err := json.Marshal(m)
	if err != nil {
		return conf
	}
	return out
}

// withCNIVersion returns a plugin result with the cniVersion of its config
// filled in when the plugin left it out (libcni does the same), or nil when
// result is not a JSON object.
func withCNIVersion(result, conf []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(result, &m) != nil || m == nil {
		return nil
	}
	if _, ok := m["cniVersion"]; ok {
		return result
	}
	var c struct {
		CNIVersion string `json:"cniVersion"`
	}
	if json.Unmarshal(conf, &c) != nil || c.CNIVersion == "" {
		return nil
	}
	m["cniVersion"], _ = json.Marshal(c.CNIVersion)
	out, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return out
}
