package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("A non-privileged container", func() {
	var pod testPod
	BeforeEach(func(ctx context.Context) { pod = runTestPod(ctx, "confined") })

	It("cannot mount a file system", func(ctx context.Context) {
		lines, _ := runToExit(ctx, pod, containerConfig("mount",
			`mkdir -p /tmp/m; mount -t tmpfs none /tmp/m 2>&1 && echo MOUNTED || echo refused`))
		Expect(lines).To(ContainElement("refused"))
		Expect(lines).NotTo(ContainElement("MOUNTED"))
	})

	It("sees neither the CRI socket nor containerd's sockets", func(ctx context.Context) {
		paths := []string{
			daemon.Socket,
			filepath.Join(daemon.State, "buildkit.sock"),
			filepath.Join(daemon.State, "containerd", "containerd.sock"),
			filepath.Join(daemon.State, "containerd", "containerd.sock.ttrpc"),
			daemon.State,
			"/run/containerd/containerd.sock",
			"/run/slipway",
		}
		// Mount points only: the rootfs's overlay options name host paths.
		script := fmt.Sprintf(`for p in %s; do [ -e "$p" ] && echo "visible $p"; done; `+
			`awk '$2 ~ /slipway|containerd|\.sock/ { print "mounted", $2 }' /proc/mounts; echo checked`, strings.Join(paths, " "))
		lines, _ := runToExit(ctx, pod, containerConfig("sockets", script))
		Expect(lines).To(Equal([]string{"checked"}), "paths of the runtime seen inside the container")
	})

	It("reads nothing from masked paths", func(ctx context.Context) {
		files := []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"}
		dirs := []string{"/sys/firmware", "/proc/acpi", "/proc/scsi", "/sys/devices/virtual/powercap"}
		script := fmt.Sprintf(`for f in %s; do [ -e "$f" ] && echo "$f $(head -c 64 "$f" 2>/dev/null | wc -c)"; done; `+
			`for d in %s; do [ -d "$d" ] && echo "$d $(ls -A "$d" | wc -l)"; done; echo checked`,
			strings.Join(files, " "), strings.Join(dirs, " "))
		lines, _ := runToExit(ctx, pod, containerConfig("masked", script))
		Expect(lines).To(ContainElement("checked"))
		// A path this kernel lacks (no /proc/kcore without CONFIG_PROC_KCORE)
		// is absent in the container too; one it has is empty there.
		var want []string
		for _, p := range append(files, dirs...) {
			if _, err := os.Stat(p); err == nil {
				want = append(want, p+" 0")
			}
		}
		Expect(want).To(ContainElement("/sys/firmware 0"), "the host has /sys/firmware")
		Expect(lines[:len(lines)-1]).To(ConsistOf(want))
	})

	It("cannot write /proc/sys or sysfs", func(ctx context.Context) {
		lines, _ := runToExit(ctx, pod, containerConfig("readonly-proc",
			`awk '$2 == "/proc/sys" || $2 == "/sys" { split($4, o, ","); print $2, o[1] }' /proc/mounts`))
		Expect(lines).To(ContainElements("/proc/sys ro", "/sys ro"))
	})
})
