package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/slipway-dev/slipway/cri"
)

func TestStreamingConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		toml    string
		args    []string
		want    StreamingConfig
		wantErr string
	}{
		{name: "defaults", want: StreamingConfig{Address: "127.0.0.1:0", IdleTimeout: "4h0m0s"}},
		{name: "file", toml: `
[streaming]
address = "127.0.0.1:10010"
tls_cert = "/etc/s/cert.pem"
tls_key = "/etc/s/key.pem"
idle_timeout = "30m"
`, want: StreamingConfig{Address: "127.0.0.1:10010", TLSCert: "/etc/s/cert.pem", TLSKey: "/etc/s/key.pem", IdleTimeout: "30m"}},
		{name: "flags over file", toml: "[streaming]\naddress = \"127.0.0.1:1\"\n",
			args: []string{"--streaming-address", "10.0.0.1:0", "--streaming-idle-timeout", "1h",
				"--streaming-tls-cert", "/c.pem", "--streaming-tls-key", "/k.pem"},
			want: StreamingConfig{Address: "10.0.0.1:0", IdleTimeout: "1h", TLSCert: "/c.pem", TLSKey: "/k.pem"}},
		{name: "other loopback", args: []string{"--streaming-address", "127.0.0.2:10010"},
			want: StreamingConfig{Address: "127.0.0.2:10010", IdleTimeout: "4h0m0s"}},
		{name: "ipv6 loopback", args: []string{"--streaming-address", "[::1]:0"},
			want: StreamingConfig{Address: "[::1]:0", IdleTimeout: "4h0m0s"}},
		{name: "localhost", args: []string{"--streaming-address", "localhost:0"},
			want: StreamingConfig{Address: "localhost:0", IdleTimeout: "4h0m0s"}},
		{name: "non-loopback without TLS", args: []string{"--streaming-address", "10.0.0.1:0"}, wantErr: "not a loopback address"},
		{name: "all interfaces without TLS", args: []string{"--streaming-address", "0.0.0.0:0"}, wantErr: "tls_cert"},
		{name: "empty host without TLS", toml: "[streaming]\naddress = \":10010\"\n", wantErr: "not a loopback address"},
		{name: "ipv6 any without TLS", args: []string{"--streaming-address", "[::]:0"}, wantErr: "not a loopback address"},
		{name: "no port", args: []string{"--streaming-address", "127.0.0.1"}, wantErr: "host:port"},
		{name: "half of TLS", args: []string{"--streaming-tls-cert", "/c.pem"}, wantErr: "tls_key"},
		{name: "bad timeout", toml: "[streaming]\nidle_timeout = \"soon\"\n", wantErr: "idle_timeout"},
		{name: "negative timeout", args: []string{"--streaming-idle-timeout", "-1s"}, wantErr: "idle_timeout"},
		{name: "unknown key", toml: "[streaming]\nport = 1\n", wantErr: "port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadTestConfig(t, tc.toml, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("loadConfig = %v, want an error naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Streaming != tc.want {
				t.Errorf("streaming config %+v, want %+v", c.Streaming, tc.want)
			}
		})
	}
}

// nopRuntime is a streaming runtime with no sessions to run.
type nopRuntime struct{ cri.ContainerStreams }

func TestStartStreamingServesTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := startStreaming(ctx, StreamingConfig{Address: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile, IdleTimeout: "1m"},
		cri.NewStreamRuntime(nopRuntime{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.GetExec(&runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"sh"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.Url, "https://"+srv.Addr().String()+"/exec/") {
		t.Errorf("URL %q, want https on %s", resp.Url, srv.Addr())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 5 * time.Second}
	// A plain GET is no session: the handshake answers, over TLS.
	r, err := client.Get("https://" + srv.Addr().String() + "/exec/nosuchtoken")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("status %s", r.Status)
	}
	cancel()
	// The server stops with its context.
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", srv.Addr().String(), time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("the streaming server still listens after its context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
