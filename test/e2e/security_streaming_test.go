package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("Streaming server exposure", func() {
	It("listens on loopback only and hands out loopback URLs by default", func(ctx context.Context) {
		pod := runTestPod(ctx, "stream-loopback")
		id := runContainer(ctx, pod, containerConfig("sleeper", "sleep 60"))

		execResp, err := runtimeSvc.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true})
		Expect(err).NotTo(HaveOccurred())
		attach, err := runtimeSvc.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: id, Stdout: true})
		Expect(err).NotTo(HaveOccurred())
		forward, err := runtimeSvc.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: pod.ID, Port: []int32{80}})
		Expect(err).NotTo(HaveOccurred())
		for _, raw := range []string{execResp.Url, attach.Url, forward.Url} {
			u, err := url.Parse(raw)
			Expect(err).NotTo(HaveOccurred())
			Expect(net.ParseIP(u.Hostname())).NotTo(BeNil(), "URL %s names an IP", raw)
			Expect(net.ParseIP(u.Hostname()).IsLoopback()).To(BeTrue(), "URL %s", raw)
		}

		listeners := tcpListeners(daemon.Cmd.Process.Pid)
		Expect(listeners).NotTo(BeEmpty(), "slipwayd listens on TCP for streaming")
		for _, l := range listeners {
			Expect(l.IP.IsLoopback()).To(BeTrue(), "slipwayd listens on %v", l.String())
		}
	})

	It("refuses to start with a non-loopback address and no TLS", func(ctx context.Context) {
		bin := os.Getenv("SLIPWAYD_BIN")
		work := GinkgoT().TempDir()
		for _, address := range []string{"0.0.0.0:0", "[::]:0", ":10010", "10.255.255.1:0"} {
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			cmd := exec.CommandContext(ctx, bin, "--root", filepath.Join(work, "root"), "--state", filepath.Join(work, "run"),
				"--cni-conf-dir", filepath.Join(work, "net.d"), "--builder=false", "--metrics-address", "127.0.0.1:0", "--streaming-address", address)
			// Were it to start, let it stop its containerd.
			cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
			cmd.WaitDelay = 15 * time.Second
			out, err := cmd.CombinedOutput()
			kept := ctx.Err()
			cancel()
			Expect(kept).NotTo(HaveOccurred(), "slipwayd with --streaming-address %s kept running:\n%s", address, out)
			Expect(err).To(HaveOccurred(), "slipwayd started with --streaming-address %s and no TLS", address)
			Expect(string(out)).To(And(ContainSubstring("streaming.address"), ContainSubstring("tls_cert")), "address %s", address)
		}
		_, err := os.Stat(filepath.Join(work, "run"))
		Expect(os.IsNotExist(err)).To(BeTrue(), "a refused start creates no state: %v", err)
	})
})

// tcpListeners are the addresses of the TCP sockets in LISTEN state that
// process pid holds, from /proc/PID/net/tcp{,6} and its file descriptors.
func tcpListeners(pid int) []net.TCPAddr {
	GinkgoHelper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	Expect(err).NotTo(HaveOccurred())
	for _, fd := range fds {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	var addrs []net.TCPAddr
	for _, file := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		Expect(err).NotTo(HaveOccurred())
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			ipHex, portHex, _ := strings.Cut(f[1], ":")
			port, err := strconv.ParseUint(portHex, 16, 16)
			Expect(err).NotTo(HaveOccurred())
			addrs = append(addrs, net.TCPAddr{IP: procNetIP(ipHex), Port: int(port)})
		}
	}
	return addrs
}

// procNetIP decodes an address of /proc/net/tcp{,6}: 32-bit words in host
// (little-endian) order.
func procNetIP(s string) net.IP {
	GinkgoHelper()
	b, err := hex.DecodeString(s)
	Expect(err).NotTo(HaveOccurred())
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return net.IP(b)
}
