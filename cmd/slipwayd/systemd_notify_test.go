package main

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifySystemd speaks sd_notify's datagram protocol to the socket named
// in NOTIFY_SOCKET, as systemd listens for it.
func TestNotifySystemdSendsStateToNotifySocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)

	for _, state := range []string{daemon.SdNotifyReady, daemon.SdNotifyStopping} {
		notifySystemd(context.Background(), state)
		buf := make([]byte, 256)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no datagram for %s: %v", state, err)
		}
		if got := string(buf[:n]); got != state {
			t.Errorf("got %q, want %q", got, state)
		}
	}
}
