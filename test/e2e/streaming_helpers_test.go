package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// streamingTransports are crictl's streaming transports: SPDY, and
// websocket (remotecommand v5, port-forward as SPDY over a websocket).
var streamingTransports = []string{"spdy", "websocket"}

// crictlCommand is a crictl command against the suite's slipwayd, for
// streaming commands the spec drives itself.
func crictlCommand(ctx context.Context, args ...string) *exec.Cmd {
	args = append([]string{"--runtime-endpoint", "unix://" + daemon.Socket, "--image-endpoint", "unix://" + daemon.Socket}, args...)
	return exec.CommandContext(ctx, "crictl", args...)
}

// crictlWithStdin runs crictl with stdin and returns its stdout and
// stderr; it fails the spec unless crictl exits 0.
func crictlWithStdin(ctx context.Context, stdin string, args ...string) (string, string) {
	GinkgoHelper()
	cmd := crictlCommand(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &stdout, &stderr
	Expect(cmd.Run()).To(Succeed(), "crictl %v: %s", args, stderr.String())
	return stdout.String(), stderr.String()
}

// requireTool fails the spec when a tool it drives is missing.
func requireTool(name string) {
	GinkgoHelper()
	if _, err := exec.LookPath(name); err != nil {
		Fail(name + " is not installed: run make deps (crictl) or apt-get install " + name)
	}
}

// tmuxSession is a detached tmux session on a server of its own, whose
// pane runs a command under a real pseudo-terminal.
type tmuxSession struct {
	socket string
	// status is the file the pane's shell writes the command's exit
	// status to when it ends (see startTmux).
	status string
}

// startTmux runs command in a new WIDTHxHEIGHT session and registers the
// session server's shutdown. The command runs under a shell that records
// its exit status for exitStatus: tmux 3.3a (Debian 12) sometimes never
// reaps a pane's process (it stays a zombie, and #{pane_dead_status}
// stays empty: 16 of 40 panes running "sleep 0.3; exit 7" here), so the
// pane's own status is not reliable.
func startTmux(ctx context.Context, width, height int, command ...string) *tmuxSession {
	GinkgoHelper()
	requireTool("tmux")
	dir := GinkgoT().TempDir()
	t := &tmuxSession{socket: filepath.Join(dir, "tmux.sock"), status: filepath.Join(dir, "status")}
	script := `"$@"; echo $? >"$0.tmp" && mv "$0.tmp" "$0"`
	args := append([]string{"new-session", "-d", "-s", "e2e", "-x", strconv.Itoa(width), "-y", strconv.Itoa(height),
		"sh", "-c", script, t.status}, command...)
	t.run(ctx, args...)
	// Keep the pane after the command exits, to read what it printed last.
	t.run(ctx, "set-option", "-t", "e2e", "remain-on-exit", "on")
	DeferCleanup(func() { _ = exec.Command("tmux", "-S", t.socket, "kill-server").Run() })
	return t
}

func (t *tmuxSession) run(ctx context.Context, args ...string) string {
	GinkgoHelper()
	cmd := exec.CommandContext(ctx, "tmux", append([]string{"-S", t.socket}, args...)...)
	cmd.Env = append(os.Environ(), "TERM=xterm")
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "tmux %v: %s", args, out)
	return string(out)
}

// send types line and Enter into the pane.
func (t *tmuxSession) send(ctx context.Context, line string) {
	GinkgoHelper()
	t.run(ctx, "send-keys", "-t", "e2e", "-l", line)
	t.run(ctx, "send-keys", "-t", "e2e", "Enter")
}

// sendUntil types line and Enter until the pane shows text.
func (t *tmuxSession) sendUntil(ctx context.Context, line, text string) {
	GinkgoHelper()
	Eventually(func() string {
		t.send(ctx, line)
		time.Sleep(300 * time.Millisecond)
		return t.screen(ctx)
	}).WithTimeout(20 * time.Second).Should(ContainSubstring(text))
}

// screen is the pane's content.
func (t *tmuxSession) screen(ctx context.Context) string {
	GinkgoHelper()
	return t.run(ctx, "capture-pane", "-p", "-t", "e2e")
}

// waitScreen waits until the pane shows text.
func (t *tmuxSession) waitScreen(ctx context.Context, text string) {
	GinkgoHelper()
	Eventually(func() string { return t.screen(ctx) }).WithTimeout(20 * time.Second).WithPolling(100 * time.Millisecond).
		Should(ContainSubstring(text))
}

// resize makes the window WIDTHxHEIGHT, which the pane's process sees as
// a SIGWINCH.
func (t *tmuxSession) resize(ctx context.Context, width, height int) {
	GinkgoHelper()
	t.run(ctx, "resize-window", "-t", "e2e", "-x", strconv.Itoa(width), "-y", strconv.Itoa(height))
}

// exitStatus waits for the pane's command to end and returns its exit
// status as its shell saw it (128+N when signal N killed it).
func (t *tmuxSession) exitStatus() int {
	GinkgoHelper()
	var code int
	Eventually(func() error {
		b, err := os.ReadFile(t.status)
		if err != nil {
			return err
		}
		code, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	}).WithTimeout(20 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	return code
}

// waitLine waits until a line of the pane matches re (compiled with
// (?m), so ^ and $ match at line ends) and returns the first such line.
func (t *tmuxSession) waitLine(ctx context.Context, re string) string {
	GinkgoHelper()
	line := regexp.MustCompile("(?m)" + re)
	var screen string
	Eventually(func() string {
		screen = t.screen(ctx)
		return screen
	}).WithTimeout(20 * time.Second).WithPolling(100 * time.Millisecond).Should(MatchRegexp(line.String()))
	return line.FindString(screen)
}

// crictlSession is a crictl streaming command whose stdin the spec writes
// as it goes.
type crictlSession struct {
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr *lockedBuffer
	done           chan struct{} // closed when crictl exited
	err            error         // its Wait result, once done
}

// startCrictl starts crictl with args and registers that it is killed if
// it still runs when the spec ends.
func startCrictl(ctx context.Context, args ...string) *crictlSession {
	GinkgoHelper()
	s := &crictlSession{cmd: crictlCommand(ctx, args...), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	var err error
	s.stdin, err = s.cmd.StdinPipe()
	Expect(err).NotTo(HaveOccurred())
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	Expect(s.cmd.Start()).To(Succeed())
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	DeferCleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

func (s *crictlSession) write(text string) {
	GinkgoHelper()
	_, err := io.WriteString(s.stdin, text)
	Expect(err).NotTo(HaveOccurred())
}

// waitStdout waits until crictl's stdout holds text.
func (s *crictlSession) waitStdout(text string) {
	GinkgoHelper()
	Eventually(s.stdout.String).WithTimeout(20*time.Second).WithPolling(50*time.Millisecond).Should(ContainSubstring(text),
		"crictl stderr: %s", s.stderr)
}

// end closes crictl's stdin and waits for it to exit 0.
func (s *crictlSession) end() {
	GinkgoHelper()
	// crictl may have exited already (the session ended on the server's
	// side), and Wait closed the pipe.
	if err := s.stdin.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		Fail("closing crictl's stdin: " + err.Error())
	}
	select {
	case <-s.done:
		Expect(s.err).NotTo(HaveOccurred(), "crictl stderr: %s", s.stderr)
	case <-time.After(20 * time.Second):
		Fail("crictl did not exit after the end of its stdin; stderr: " + s.stderr.String())
	}
}

// lockedBuffer is a bytes.Buffer a process writes while a spec reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
