// Command slipway-infra holds a pod's shared PID namespace, the job a pause
// container does elsewhere: it runs as PID 1 of the pod, reaps the orphans
// that are re-parented to it, and exits 0 on SIGINT or SIGTERM. slipwayd
// runs it from a synthetic root filesystem, so no image is pulled.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
