package main

import (
	"strings"
	"testing"
)

func TestNRIConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		toml    string
		args    []string
		want    NRIConfig
		wantErr string
	}{
		{name: "defaults", want: NRIConfig{Enable: true, SocketPath: "/var/run/nri/nri.sock", PluginPath: "/opt/nri/plugins",
			PluginConfigPath: "/etc/nri/conf.d", PluginRegistrationTimeout: "5s", PluginRequestTimeout: "5s"}},
		{name: "socket follows --state", args: []string{"--state", "/tmp/st"}, want: NRIConfig{Enable: true, SocketPath: "/tmp/st/nri/nri.sock"}},
		{name: "--nri-socket wins", args: []string{"--state", "/tmp/st", "--nri-socket", "/tmp/n.sock"}, want: NRIConfig{Enable: true, SocketPath: "/tmp/n.sock"}},
		{name: "file's socket kept with --state", toml: "[nri]\nsocket_path = \"/x/nri.sock\"\n", args: []string{"--state", "/tmp/st"},
			want: NRIConfig{Enable: true, SocketPath: "/x/nri.sock"}},
		{name: "off by flag", args: []string{"--nri=false"}, want: NRIConfig{Enable: false, SocketPath: "/var/run/nri/nri.sock"}},
		{name: "off by file", toml: "[nri]\nenable = false\n", want: NRIConfig{Enable: false, SocketPath: "/var/run/nri/nri.sock"}},
		{name: "bad flag", args: []string{"--nri=maybe"}, wantErr: "want true or false"},
		{name: "relative socket", args: []string{"--nri-socket", "nri.sock"}, wantErr: "nri.socket_path must be an absolute path"},
		{name: "bad timeout", toml: "[nri]\nplugin_request_timeout = \"soon\"\n", wantErr: "nri.plugin_request_timeout"},
		{name: "zero timeout", toml: "[nri]\nplugin_registration_timeout = \"0s\"\n", wantErr: "nri.plugin_registration_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadTestConfig(t, tc.toml, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n := cfg.NRI
			if n.Enable != tc.want.Enable || n.SocketPath != tc.want.SocketPath {
				t.Errorf("nri = %+v, want enable %v socket %q", n, tc.want.Enable, tc.want.SocketPath)
			}
			if tc.want.PluginPath != "" && n != tc.want {
				t.Errorf("nri = %+v, want %+v", n, tc.want)
			}
		})
	}
}
