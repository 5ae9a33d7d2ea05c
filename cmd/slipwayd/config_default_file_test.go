package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// defaultConfigFile is the commented default config that hack/install.sh
// installs as /etc/slipway/config.toml: every key, commented out at its
// default, each under a one-line explanation.
const defaultConfigFile = "../../hack/install/config.toml"

// settingLine is a commented-out setting ("#key = value"); explanations
// start with "# ".
var settingLine = regexp.MustCompile(`(?m)^#([A-Za-z0-9_]+ = )`)

// uncommentedDefaultConfig writes the default config file with every
// setting uncommented and returns its path.
func uncommentedDefaultConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(defaultConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	if !settingLine.Match(b) {
		t.Fatalf("%s has no commented-out settings (#key = value)", defaultConfigFile)
	}
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, settingLine.ReplaceAll(b, []byte("$1")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadWithConfigFile runs slipwayd's config loader on path, with no other
// flags.
func loadWithConfigFile(t *testing.T, path string) Config {
	t.Helper()
	cfg, err := loadConfig([]string{"--config", path})
	if err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	return emptySlicesAsNil(cfg)
}

func TestDefaultConfigFileAsInstalledChangesNothing(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.toml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	want := loadWithConfigFile(t, empty)
	for _, d := range configDiff(loadWithConfigFile(t, defaultConfigFile), want) {
		t.Errorf("the installed (all commented) file changes %s", d)
	}
}

func TestDefaultConfigFileUncommentedIsTheBuiltInDefaults(t *testing.T) {
	path := uncommentedDefaultConfig(t)

	// Decoded onto a zero Config, the file alone must give every default:
	// a key missing from the file, or at another value, shows here.
	var fromFile Config
	if err := readConfigFile(path, true, &fromFile); err != nil {
		t.Fatal(err)
	}
	for _, d := range configDiff(emptySlicesAsNil(fromFile), emptySlicesAsNil(defaultConfig())) {
		t.Errorf("uncommented file is not the built-in defaults: %s", d)
	}

	// Through the whole loader (flags' defaults resolved, validation) it
	// is the same as no file at all.
	empty := filepath.Join(t.TempDir(), "empty.toml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range configDiff(loadWithConfigFile(t, path), loadWithConfigFile(t, empty)) {
		t.Errorf("loading the uncommented file: %s", d)
	}
}

func TestDefaultConfigFileHasEveryKeyExplained(t *testing.T) {
	b, err := os.ReadFile(uncommentedDefaultConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	inFile := map[string]bool{}
	flattenKeys("", doc, inFile)
	known := map[string]bool{}
	configKeys("", reflect.TypeOf(Config{}), known)
	for _, k := range sortedKeys(known) {
		if !inFile[k] {
			t.Errorf("%s: key %s is missing", defaultConfigFile, k)
		}
	}
	for _, k := range sortedKeys(inFile) {
		if !known[k] {
			t.Errorf("%s: key %s is not a config key", defaultConfigFile, k)
		}
	}

	// Each setting has its explanation on the line above.
	orig, err := os.ReadFile(defaultConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(orig), "\n")
	for i, l := range lines {
		if settingLine.MatchString(l) && (i == 0 || !strings.HasPrefix(lines[i-1], "# ")) {
			t.Errorf("%s:%d: %q has no explanation on the line above", defaultConfigFile, i+1, l)
		}
	}
}

// configKeys adds the dotted TOML key of every setting of struct type t
// (tables are nested structs) to keys.
func configKeys(prefix string, t reflect.Type, keys map[string]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if f.Type.Kind() == reflect.Struct {
			configKeys(prefix+name+".", f.Type, keys)
			continue
		}
		keys[prefix+name] = true
	}
}

// flattenKeys adds the dotted key of every non-table value in doc to keys.
func flattenKeys(prefix string, doc map[string]any, keys map[string]bool) {
	for k, v := range doc {
		if table, ok := v.(map[string]any); ok {
			flattenKeys(prefix+k+".", table, keys)
			continue
		}
		keys[prefix+k] = true
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// configDiff names each setting (by its TOML key, or its Go field name
// when it has none) whose value differs between got and want, with both
// values. Settings are compared whole, so a new field is never missed.
func configDiff(got, want Config) []string {
	var diffs []string
	var walk func(prefix string, g, w reflect.Value)
	walk = func(prefix string, g, w reflect.Value) {
		for i := range g.NumField() {
			f := g.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				name = f.Name
			}
			if f.Type.Kind() == reflect.Struct {
				walk(prefix+name+".", g.Field(i), w.Field(i))
				continue
			}
			if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
				diffs = append(diffs, fmt.Sprintf("%s%s = %#v, want %#v", prefix, name, g.Field(i).Interface(), w.Field(i).Interface()))
			}
		}
	}
	walk("", reflect.ValueOf(got), reflect.ValueOf(want))
	return diffs
}

// emptySlicesAsNil returns cfg with every empty slice made nil: the file's
// `entitlements = []` and the built-in nil mean the same.
func emptySlicesAsNil(cfg Config) Config {
	v := reflect.ValueOf(&cfg).Elem()
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Field(i).CanSet() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice:
			if v.Len() == 0 {
				v.Set(reflect.Zero(v.Type()))
			}
		}
	}
	walk(v)
	return cfg
}
