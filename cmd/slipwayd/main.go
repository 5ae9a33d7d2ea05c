// Command slipwayd is the slipway node runtime daemon: it serves the
// Kubernetes CRI on a unix socket, backed by containerd (its own embedded
// one unless --containerd-address is given).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/containerd/log"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// init locks the main goroutine to the main thread for the process's
// life, so no other goroutine ever runs there. slipwayd joins pods'
// namespaces on goroutines that end locked to their thread, which Go then
// discards; it cannot discard the main thread, so such a goroutine on it
// would leave the main thread (and /proc/PID/ns) in a pod's namespaces,
// holding them after the pod is gone.
func init() { runtime.LockOSThread() }

func main() {
	closeInheritedFDsOnExec()
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "version") {
		fmt.Println("slipwayd", version)
		return
	}
	cfg, err := loadConfig(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "slipwayd:", err)
		os.Exit(2)
	}
	if err := setupLogging(cfg.LogLevel); err != nil {
		fmt.Fprintln(os.Stderr, "slipwayd:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		log.G(ctx).WithError(err).Error("slipwayd failed")
		os.Exit(1)
	}
}

func setupLogging(level string) error {
	if err := log.SetLevel(level); err != nil {
		return fmt.Errorf("log level %q: %w", level, err)
	}
	return log.SetFormat(log.TextFormat)
}
