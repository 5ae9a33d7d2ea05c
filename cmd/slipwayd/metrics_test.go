package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestMetricsConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		toml    string
		args    []string
		want    MetricsConfig
		wantErr string
	}{
		{name: "defaults", want: MetricsConfig{Address: "127.0.0.1:9898"}},
		{name: "file", toml: "[metrics]\naddress = \"127.0.0.1:9100\"\npprof = true\n", want: MetricsConfig{Address: "127.0.0.1:9100", Pprof: true}},
		{name: "flags over file", toml: "[metrics]\naddress = \"127.0.0.1:9100\"\n", args: []string{"--metrics-address", "[::1]:0", "--metrics-pprof"},
			want: MetricsConfig{Address: "[::1]:0", Pprof: true}},
		{name: "off", args: []string{"--metrics-address="}, want: MetricsConfig{}},
		{name: "off by file", toml: "[metrics]\naddress = \"\"\n", want: MetricsConfig{}},
		{name: "localhost", args: []string{"--metrics-address", "localhost:0"}, want: MetricsConfig{Address: "localhost:0"}},
		{name: "non-loopback with TLS", args: []string{"--metrics-address", "10.0.0.1:9898", "--metrics-tls-cert", "/c.pem", "--metrics-tls-key", "/k.pem"},
			want: MetricsConfig{Address: "10.0.0.1:9898", TLSCert: "/c.pem", TLSKey: "/k.pem"}},
		{name: "non-loopback without TLS", args: []string{"--metrics-address", "10.0.0.1:9898"}, wantErr: `metrics.address "10.0.0.1:9898" is not a loopback address`},
		{name: "all interfaces without TLS", args: []string{"--metrics-address", ":9898"}, wantErr: "metrics.tls_cert and metrics.tls_key"},
		{name: "ipv6 any without TLS", args: []string{"--metrics-address", "[::]:9898"}, wantErr: "not a loopback address"},
		{name: "pprof off loopback", args: []string{"--metrics-address", "0.0.0.0:9898", "--metrics-tls-cert", "/c", "--metrics-tls-key", "/k", "--metrics-pprof"},
			wantErr: "metrics.pprof needs a loopback metrics.address"},
		{name: "pprof without listener", args: []string{"--metrics-address=", "--metrics-pprof"}, wantErr: "metrics.pprof needs metrics.address"},
		{name: "no port", args: []string{"--metrics-address", "127.0.0.1"}, wantErr: "metrics.address must be host:port"},
		{name: "half of TLS", args: []string{"--metrics-tls-key", "/k"}, wantErr: "set together"},
		{name: "unknown key", toml: "[metrics]\nport = 9898\n", wantErr: "port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadTestConfig(t, tc.toml, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("loadConfig = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Metrics != tc.want {
				t.Errorf("metrics config %+v, want %+v", c.Metrics, tc.want)
			}
		})
	}
}

func httpGet(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestStartMetricsServesAndStops(t *testing.T) {
	reg, m, err := newMetrics()
	if err != nil {
		t.Fatal(err)
	}
	m.ContainerdRestarted()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ready readiness
	addr, err := startMetrics(ctx, MetricsConfig{Address: "127.0.0.1:0", Pprof: true}, reg, &ready)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr.String()
	client := &http.Client{Timeout: 10 * time.Second}

	if code, _ := httpGet(t, client, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := httpGet(t, client, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Errorf("/readyz before set = %d %q", code, body)
	}
	ready.set(func(context.Context) error {
		return errors.New("the pod network is not ready: no config in /etc/cni/net.d")
	})
	if code, body := httpGet(t, client, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "pod network") {
		t.Errorf("/readyz while the network is not ready = %d %q", code, body)
	}
	ready.set(func(context.Context) error { return nil })
	if code, body := httpGet(t, client, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz when ready = %d %q", code, body)
	}
	code, body := httpGet(t, client, base+"/metrics")
	for _, want := range []string{"slipway_containerd_restarts_total 1", "go_goroutines ", "process_resident_memory_bytes "} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("/metrics = %d, lacks %q", code, want)
		}
	}
	if code, _ := httpGet(t, client, base+"/debug/pprof/cmdline"); code != http.StatusOK {
		t.Errorf("pprof = %d", code)
	}
	ready.stop()
	if code, body := httpGet(t, client, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Errorf("/readyz while stopping = %d %q", code, body)
	}

	// A second listener on the same port fails, naming the key.
	_, err = startMetrics(ctx, MetricsConfig{Address: addr.String()}, reg, &ready)
	if err == nil || !strings.Contains(err.Error(), "metrics.address "+addr.String()) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("a busy port: %v, want an error naming metrics.address", err)
	}

	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("the metrics listener still answers after its context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartMetricsOff(t *testing.T) {
	reg, _, err := newMetrics()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := startMetrics(context.Background(), MetricsConfig{}, reg, &readiness{})
	if addr != nil || err != nil {
		t.Errorf("an empty address serves %v, %v", addr, err)
	}
}

func TestStartMetricsServesTLS(t *testing.T) {
	certFile, keyFile := writeSelfSigned(t, t.TempDir())
	reg, _, err := newMetrics()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := startMetrics(ctx, MetricsConfig{Address: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile}, reg, &readiness{})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if code, body := httpGet(t, client, "https://"+addr.String()+"/metrics"); code != http.StatusOK || !strings.Contains(body, "slipway_") {
		t.Errorf("https /metrics = %d", code)
	}
}
