package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// nobody is the uid and gid an unprivileged local user runs as.
const nobody = 65534

var _ = Describe("Runtime sockets", func() {
	sockets := func() map[string]string {
		return map[string]string{
			"CRI":      daemon.Socket,
			"BuildKit": filepath.Join(daemon.State, "buildkit.sock"),
		}
	}

	It("are root-only sockets in root-owned directories no other user can write", func() {
		for name, path := range sockets() {
			fi, err := os.Lstat(path)
			Expect(err).NotTo(HaveOccurred(), "%s socket", name)
			Expect(fi.Mode().Type()).To(Equal(os.ModeSocket), "%s socket %s", name, path)
			Expect(fi.Mode().Perm()&0o077).To(BeZero(), "%s socket %s has mode %v", name, path, fi.Mode())
			Expect(fi.Sys().(*syscall.Stat_t).Uid).To(BeZero(), "%s socket %s owner", name, path)

			dir := filepath.Dir(path)
			di, err := os.Stat(dir)
			Expect(err).NotTo(HaveOccurred())
			Expect(di.Mode().Perm()&0o002).To(BeZero(), "%s socket dir %s has mode %v", name, dir, di.Mode())
			Expect(di.Sys().(*syscall.Stat_t).Uid).To(BeZero(), "%s socket dir %s owner", name, dir)
		}
	})

	It("refuse a connection from a user other than root", func(ctx context.Context) {
		requireTool("crictl")
		// The suite's work directory is 0700; a hard link in a directory
		// anyone can enter leaves the socket's own mode as the only guard.
		open, err := os.MkdirTemp("", "slipway-e2e-sockets-")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(os.RemoveAll, open)
		Expect(os.Chmod(open, 0o755)).To(Succeed())
		for name, path := range sockets() {
			link := filepath.Join(open, filepath.Base(path))
			Expect(os.Link(path, link)).To(Succeed(), "linking the %s socket", name)

			out, err := crictlAs(ctx, nil, link)
			Expect(string(out)).NotTo(ContainSubstring("permission denied"), "root through the link to the %s socket: %v", name, err)
			out, err = crictlAs(ctx, &syscall.Credential{Uid: nobody, Gid: nobody}, link)
			Expect(err).To(HaveOccurred(), "uid %d reached the %s socket: %s", nobody, name, out)
			Expect(string(out)).To(ContainSubstring("permission denied"), "uid %d dialing the %s socket", nobody, name)
		}
	})
})

// crictlAs runs `crictl version` against socket as cred (nil: as the
// suite's root) and returns its output.
func crictlAs(ctx context.Context, cred *syscall.Credential, socket string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "crictl", "--timeout", "5s", "--runtime-endpoint", "unix://"+socket, "version")
	cmd.Env = []string{"HOME=/", "PATH=" + os.Getenv("PATH")}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return cmd.CombinedOutput()
}
