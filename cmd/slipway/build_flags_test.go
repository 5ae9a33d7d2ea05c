package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseBuildFlags(t *testing.T) {
	ctxDir := t.TempDir()
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, o buildOptions)
		wantErr string
	}{
		{
			name: "docker-style flags before and after the context",
			args: []string{"-t", "a:1", ctxDir, "--tag", "b:2", "-f", "Dockerfile.dev", "--build-arg", "K=V", "--label", "x=y", "--target", "t", "--no-cache", "--pull", "-q"},
			check: func(t *testing.T, o buildOptions) {
				if o.contextDir != ctxDir || !slices.Equal(o.tags, []string{"a:1", "b:2"}) || o.file != "Dockerfile.dev" ||
					!slices.Equal(o.buildArgs, []string{"K=V"}) || !slices.Equal(o.labels, []string{"x=y"}) ||
					o.target != "t" || !o.noCache || !o.pull || o.progress != "quiet" {
					t.Errorf("parsed %+v", o)
				}
			},
		},
		{
			name: "default address",
			args: []string{ctxDir},
			check: func(t *testing.T, o buildOptions) {
				if o.addr != defaultAddr || o.progress != "auto" {
					t.Errorf("addr %q progress %q", o.addr, o.progress)
				}
			},
		},
		{
			name: "BUILDKIT_HOST, then --addr",
			args: []string{ctxDir},
			env:  map[string]string{"BUILDKIT_HOST": "tcp://builder:1234"},
			check: func(t *testing.T, o buildOptions) {
				if o.addr != "tcp://builder:1234" {
					t.Errorf("addr %q", o.addr)
				}
			},
		},
		{
			name: "--addr wins over BUILDKIT_HOST",
			args: []string{"--addr", "unix:///x.sock", ctxDir},
			env:  map[string]string{"BUILDKIT_HOST": "tcp://builder:1234"},
			check: func(t *testing.T, o buildOptions) {
				if o.addr != "unix:///x.sock" {
					t.Errorf("addr %q", o.addr)
				}
			},
		},
		{name: "no context", args: []string{"-t", "a"}, wantErr: "exit status 2"},
		{name: "two contexts", args: []string{ctxDir, ctxDir}, wantErr: "exit status 2"},
		{name: "missing context", args: []string{ctxDir + "/nope"}, wantErr: "build context"},
		{name: "stdin context", args: []string{"-"}, wantErr: "build context from stdin is not supported"},
		{name: "bad progress", args: []string{"--progress", "fancy", ctxDir}, wantErr: `--progress must be auto, plain, tty, quiet or rawjson, got "fancy"`},
		{name: "tag with comma", args: []string{"-t", "a,b", ctxDir}, wantErr: `-t "a,b" is not an image name`},
		{name: "label without value", args: []string{"--label", "novalue", ctxDir}, wantErr: `--label "novalue": want KEY=VALUE`},
		{name: "empty build arg", args: []string{"--build-arg", "=v", ctxDir}, wantErr: `--build-arg "=v"`},
		{name: "push and output", args: []string{"--push", "-o", "type=local,dest=x", ctxDir}, wantErr: "--push cannot be combined with --output"},
		{name: "cert without key", args: []string{"--tls-cert", "c.pem", ctxDir}, wantErr: "--tls-cert and --tls-key go together"},
		{name: "unknown flag", args: []string{"--frobnicate", ctxDir}, wantErr: "flag provided but not defined: -frobnicate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clear(env)
			for k, v := range tc.env {
				env[k] = v
			}
			o, err := parseBuildFlags(tc.args, io.Discard, getenv)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

func TestParseBuildFlagsHelp(t *testing.T) {
	var out strings.Builder
	_, err := parseBuildFlags([]string{"--help"}, &out, func(string) string { return "" })
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "Usage: slipway build") {
		t.Fatalf("err %v, usage %q", err, out.String())
	}
}

func TestParseCSV(t *testing.T) {
	attrs, bare, err := parseCSV("--output", `type=local,"dest=a,b",flag`)
	if err != nil {
		t.Fatal(err)
	}
	if attrs["type"] != "local" || attrs["dest"] != "a,b" || !slices.Equal(bare, []string{"flag"}) {
		t.Errorf("attrs %v bare %v", attrs, bare)
	}
	if _, _, err := parseCSV("--output", "=x"); err == nil || !strings.Contains(err.Error(), "empty key") {
		t.Errorf("error = %v, want empty key", err)
	}
	if _, _, err := parseCSV("--output", `"unterminated`); err == nil || !strings.Contains(err.Error(), `--output "\"unterminated"`) {
		t.Errorf("error = %v, want one naming the flag", err)
	}
}
