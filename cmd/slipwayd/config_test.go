package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// parseTestConfig runs parseConfig on args with a config file holding toml.
func parseTestConfig(t *testing.T, toml string, args ...string) (Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return parseConfig(append([]string{"--config", path}, args...))
}

func TestFlagsOverrideTheFile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		toml  string
		args  []string
		check func(c Config) error
	}{
		{name: "flag wins", toml: "root = \"/file\"\n", args: []string{"--root", "/flag"}, check: func(c Config) error {
			return want(c.Root, "/flag")
		}},
		{name: "file kept without the flag", toml: "root = \"/file\"\n", args: []string{"--state", "/st"}, check: func(c Config) error {
			return want(c.Root, "/file")
		}},
		{name: "last of a repeated flag wins", args: []string{"--log-level", "debug", "--log-level", "warn"}, check: func(c Config) error {
			return want(c.LogLevel, "warn")
		}},
		{name: "an empty value sets the field empty", toml: "[containerd]\naddress = \"/run/c.sock\"\n", args: []string{"--containerd-address", ""}, check: func(c Config) error {
			return want(c.Containerd.Address, "")
		}},
		{name: "lists split on commas", toml: "[cni]\nbin_dirs = [\"/x\"]\n", args: []string{"--cni-bin-dirs", "/a,/b"}, check: func(c Config) error {
			return want(strings.Join(c.CNI.BinDirs, "|"), "/a|/b")
		}},
		{name: "bool flag false over file true", toml: "[builder]\nenabled = true\n", args: []string{"--builder=false"}, check: func(c Config) error {
			return want(c.Builder.Enabled, false)
		}},
		{name: "bare bool flag is true", toml: "[nri]\nenable = false\n", args: []string{"--nri"}, check: func(c Config) error {
			return want(c.NRI.Enable, true)
		}},
		{name: "sockets follow --state", args: []string{"--state", "/st"}, check: func(c Config) error {
			return want(c.CRI.Socket+" "+c.NRI.SocketPath+" "+c.Builder.Socket, "/st/slipway.sock /st/nri/nri.sock /st/buildkit.sock")
		}},
		{name: "sockets the file moved stay with --state", toml: "[cri]\nsocket = \"/f/cri.sock\"\n[nri]\nsocket_path = \"/f/nri.sock\"\n",
			args: []string{"--state", "/st"}, check: func(c Config) error {
				return want(c.CRI.Socket+" "+c.NRI.SocketPath, "/f/cri.sock /f/nri.sock")
			}},
		{name: "socket flags win over --state in any order", args: []string{"--socket", "/run/slipway/slipway.sock", "--state", "/st", "--nri-socket", "/n.sock"},
			check: func(c Config) error {
				return want(c.CRI.Socket+" "+c.NRI.SocketPath, "/run/slipway/slipway.sock /n.sock")
			}},
		{name: "state from the file moves only the builder socket", toml: "state = \"/st\"\n", check: func(c Config) error {
			return want(c.CRI.Socket+" "+c.Builder.Socket, "/run/slipway/slipway.sock /st/buildkit.sock")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseTestConfig(t, tc.toml, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.check(c); err != nil {
				t.Error(err)
			}
		})
	}
}

func want[T comparable](got, want T) error {
	if got != want {
		return fmt.Errorf("got %v, want %v", got, want)
	}
	return nil
}

func TestFlagErrors(t *testing.T) {
	for args, wantErr := range map[string]string{
		"--builder=maybe":            "want true or false",
		"--nosuchflag":               "flag provided but not defined",
		"--root /r extra":            "unexpected arguments",
		"--shim-pods-per-group=some": "want a whole number",
	} {
		if _, err := parseTestConfig(t, "", strings.Fields(args)...); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: error %v, want one containing %q", args, err, wantErr)
		}
	}
}

func TestShimPodsPerGroupBelowOneIsRefused(t *testing.T) {
	cfg, err := parseTestConfig(t, "[cri]\nshim_pods_per_group = 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "cri.shim_pods_per_group must be 1 or more, got 0") {
		t.Fatalf("validate: %v, want the key named", err)
	}
}

// configRow is one row of the README's configuration table: TOML keys and
// the flags that override them, pairwise.
type configRow struct {
	keys, flags []string
}

// readmeConfigRows parses the README's configuration table. A row may name
// sibling keys and flags in short (`builder.tls_cert`, `tls_key`;
// `--builder-tls-cert`, `-key`).
func readmeConfigRows(t *testing.T) []configRow {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "| TOML key | flag | default | meaning |")
	if !ok {
		t.Fatal("README has no configuration table")
	}
	code := regexp.MustCompile("`([^`]+)`")
	var rows []configRow
	for _, line := range strings.Split(table, "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(line, "|")
		var row configRow
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			k := m[1]
			if len(row.keys) > 0 && !strings.Contains(k, ".") {
				prev := row.keys[0]
				k = prev[:strings.LastIndex(prev, ".")+1] + k
			}
			row.keys = append(row.keys, k)
		}
		for _, m := range code.FindAllStringSubmatch(cells[2], -1) {
			f := m[1]
			if !strings.HasPrefix(f, "--") {
				prev := row.flags[0]
				f = prev[:strings.LastIndex(prev, "-")] + f
			}
			row.flags = append(row.flags, strings.TrimPrefix(f, "--"))
		}
		rows = append(rows, row)
	}
	if len(rows) < 30 {
		t.Fatalf("parsed only %d rows of the README's configuration table", len(rows))
	}
	return rows
}

// TestREADMEConfigTable checks that every flag in the README's table sets
// the same field as its TOML key, and that every flag slipwayd defines is
// in the table.
func TestREADMEConfigTable(t *testing.T) {
	documented := map[string]bool{"config": true}
	for _, row := range readmeConfigRows(t) {
		if len(row.flags) == 0 {
			// The key alone must be known.
			for _, k := range row.keys {
				if _, err := parseTestConfig(t, fmt.Sprintf("%s = %s\n", k, tomlValueFor(t, k)), "--state", "/st"); err != nil {
					t.Errorf("key %s: %v", k, err)
				}
			}
			continue
		}
		if len(row.flags) != len(row.keys) {
			t.Errorf("README row %v: %d keys but %d flags", row.keys, len(row.keys), len(row.flags))
			continue
		}
		for i, flagName := range row.flags {
			documented[flagName] = true
			key := row.keys[i]
			tomlValue, flagValue := tomlValueFor(t, key), flagValueFor(t, key)
			fromFile, err := parseTestConfig(t, fmt.Sprintf("%s = %s\n", key, tomlValue))
			if err != nil {
				t.Errorf("key %s: %v", key, err)
				continue
			}
			fromFlag, err := parseTestConfig(t, "", "--"+flagName+"="+flagValue)
			if err != nil {
				t.Errorf("flag --%s: %v", flagName, err)
				continue
			}
			if key == "state" {
				// Only --state also moves the sockets (see placeUnderState).
				fromFlag.CRI.Socket, fromFlag.NRI.SocketPath = fromFile.CRI.Socket, fromFile.NRI.SocketPath
			}
			if reflect.DeepEqual(fromFile, defaultConfig()) {
				t.Errorf("key %s = %s changes nothing", key, tomlValue)
			}
			if !reflect.DeepEqual(fromFile, fromFlag) {
				t.Errorf("--%s=%s and %s = %s differ:\nflag %+v\nfile %+v", flagName, flagValue, key, tomlValue, fromFlag, fromFile)
			}
		}
	}
	o := newOverrideFlags()
	o.fs.String("config", "", "")
	o.defineFlags(defaultConfig())
	o.fs.VisitAll(func(f *flag.Flag) {
		if !documented[f.Name] {
			t.Errorf("flag --%s is not in the README's configuration table", f.Name)
		}
	})
}

// tomlValueFor and flagValueFor give a value of the key's type that
// differs from its default.
func tomlValueFor(t *testing.T, key string) string {
	switch kind := fieldKind(t, key); kind {
	case reflect.Bool:
		return fmt.Sprint(!defaultBool(t, key))
	case reflect.Slice:
		return `["/a", "/b"]`
	case reflect.Int:
		return "3"
	default:
		return `"/v"`
	}
}

func flagValueFor(t *testing.T, key string) string {
	switch fieldKind(t, key) {
	case reflect.Bool:
		return fmt.Sprint(!defaultBool(t, key))
	case reflect.Slice:
		return "/a,/b"
	case reflect.Int:
		return "3"
	default:
		return "/v"
	}
}

// field finds the Config field a dotted TOML key names.
func field(t *testing.T, cfg *Config, key string) reflect.Value {
	t.Helper()
	v := reflect.ValueOf(cfg).Elem()
next:
	for _, part := range strings.Split(key, ".") {
		for i := 0; i < v.NumField(); i++ {
			if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ","); tag == part {
				v = v.Field(i)
				continue next
			}
		}
		t.Fatalf("no Config field for key %s", key)
	}
	return v
}

func fieldKind(t *testing.T, key string) reflect.Kind {
	var c Config
	return field(t, &c, key).Kind()
}

func defaultBool(t *testing.T, key string) bool {
	c := defaultConfig()
	return field(t, &c, key).Bool()
}
