package main

import (
	"context"

	"github.com/containerd/log"
	"github.com/coreos/go-systemd/v22/daemon"
)

// notifySystemd sends state (sd_notify(3): daemon.SdNotifyReady once the
// CRI, or in builder-only mode BuildKit, serves; daemon.SdNotifyStopping
// when shutdown starts) to the socket a Type=notify systemd unit names in
// NOTIFY_SOCKET. Without NOTIFY_SOCKET it does nothing; a failed send is
// logged, never fatal.
func notifySystemd(ctx context.Context, state string) {
	sent, err := daemon.SdNotify(false, state)
	if err != nil {
		log.G(ctx).WithError(err).WithField("state", state).Warn("telling systemd the daemon's state")
		return
	}
	if sent {
		log.G(ctx).WithField("state", state).Debug("told systemd")
	}
}
