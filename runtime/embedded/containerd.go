package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/log"
)

const (
	readyTimeout   = 60 * time.Second
	stopTimeout    = 15 * time.Second
	minBackoff     = 100 * time.Millisecond
	maxBackoff     = 10 * time.Second
	stableDuration = 30 * time.Second
)

// Containerd is a supervised containerd child process.
type Containerd struct {
	cfg Config

	mu sync.Mutex
	// cmd is the running process; mu guards it.
	cmd *exec.Cmd
	// stopping is set by Stop; mu guards it.
	stopping bool

	done chan struct{} // closed when supervision ends
}

// Start writes the config, ends a containerd left over from an earlier
// slipwayd with the same config, starts containerd and waits until it
// serves. After that a goroutine restarts containerd whenever it exits,
// until Stop.
func Start(ctx context.Context, cfg Config) (*Containerd, error) {
	if cfg.Binary == "" {
		cfg.Binary = "containerd"
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("containerd binary %q: %w", cfg.Binary, err)
	}
	cfg.Binary = bin
	if err := cfg.Write(); err != nil {
		return nil, err
	}
	d := &Containerd{cfg: cfg, done: make(chan struct{})}
	d.endLeftover(ctx)
	exited, err := d.spawn(ctx)
	if err != nil {
		return nil, err
	}
	if err := waitServing(ctx, cfg.Address(), exited); err != nil {
		d.kill()
		return nil, err
	}
	go d.supervise(log.WithLogger(context.WithoutCancel(ctx), log.G(ctx)), exited)
	return d, nil
}

// Address is the containerd gRPC socket.
func (d *Containerd) Address() string { return d.cfg.Address() }

// Pid is the process id of the running containerd, or 0.
func (d *Containerd) Pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Stop ends supervision and stops containerd with SIGTERM, then SIGKILL
// after a timeout. Shims and their containers keep running.
func (d *Containerd) Stop() {
	d.mu.Lock()
	d.stopping = true
	cmd := d.cmd
	d.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-d.done:
	case <-time.After(stopTimeout):
		d.kill()
		<-d.done
	}
	_ = os.Remove(d.cfg.pidPath())
}

func (d *Containerd) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil && d.cmd.Process != nil {
		_ = d.cmd.Process.Kill()
	}
}

// spawn starts containerd and returns a channel closed when it exits.
func (d *Containerd) spawn(ctx context.Context) (<-chan struct{}, error) {
	logFile, err := os.OpenFile(d.cfg.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening containerd log: %w", err)
	}
	cmd := exec.Command(d.cfg.Binary, "--config", d.cfg.ConfigPath())
	cmd.Env = withoutNotifySocket(os.Environ())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // a terminal's ^C reaches slipwayd only
		Pdeathsig: syscall.SIGTERM, // containerd ends with slipwayd, even on a crash
	}
	waited, err := StartTied(cmd)
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting containerd: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		err := <-waited
		logFile.Close()
		log.G(ctx).WithField("pid", cmd.Process.Pid).WithField("status", exitStatus(err)).Info("containerd exited")
		close(exited)
	}()
	if err := os.WriteFile(d.cfg.pidPath(), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		log.G(ctx).WithError(err).Warn("writing containerd pid file")
	}
	d.mu.Lock()
	d.cmd = cmd
	d.mu.Unlock()
	log.G(ctx).WithField("pid", cmd.Process.Pid).WithField("address", d.cfg.Address()).Info("started containerd")
	return exited, nil
}

// StartTied starts cmd, whose SysProcAttr.Pdeathsig ties it to this
// process, and returns a channel that gets cmd.Wait's result. Pdeathsig
// fires when the parent THREAD ends, and Go ends a thread whenever a
// goroutine exits locked to it (slipwayd does so after joining a pod's
// namespaces); so cmd is started and waited for on a thread locked for
// cmd's whole life.
func StartTied(cmd *exec.Cmd) (<-chan error, error) {
	started, waited := make(chan error, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		waited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return waited, nil
}

// supervise restarts containerd after each exit, with exponential backoff
// that resets once a run has lasted stableDuration.
func (d *Containerd) supervise(ctx context.Context, exited <-chan struct{}) {
	defer close(d.done)
	backoff := minBackoff
	started := time.Now()
	for {
		<-exited
		if d.isStopping() {
			return
		}
		if time.Since(started) > stableDuration {
			backoff = minBackoff
		}
		log.G(ctx).WithField("backoff", backoff).Warn("containerd died; restarting")
		time.Sleep(backoff)
		backoff = min(backoff*2, maxBackoff)
		if d.isStopping() {
			return
		}
		var err error
		started = time.Now()
		d.cfg.Metrics.ContainerdRestarted()
		if exited, err = d.spawn(ctx); err != nil {
			log.G(ctx).WithError(err).Error("restarting containerd")
			closed := make(chan struct{})
			close(closed)
			exited = closed
			continue
		}
		if err := waitServing(ctx, d.cfg.Address(), exited); err != nil {
			log.G(ctx).WithError(err).Error("restarted containerd does not serve")
		}
	}
}

func (d *Containerd) isStopping() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopping
}

// endLeftover stops a containerd that an earlier slipwayd started with this
// config and that outlived it, so the new one can take the socket and root.
func (d *Containerd) endLeftover(ctx context.Context) {
	b, err := os.ReadFile(d.cfg.pidPath())
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), d.cfg.ConfigPath()) {
		return
	}
	log.G(ctx).WithField("pid", pid).Warn("stopping containerd left over from an earlier slipwayd")
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(stopTimeout)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// waitServing polls address until containerd answers, it exits, or
// readyTimeout passes.
func waitServing(ctx context.Context, address string, exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		if err := Ping(ctx, address); err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("containerd exited before serving; see its log")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd did not serve on %s within %s", address, readyTimeout)
		}
	}
}

// Ping reports whether containerd at address answers.
func Ping(ctx context.Context, address string) error {
	if _, err := os.Stat(address); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := containerd.New(address, containerd.WithTimeout(time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	serving, err := c.IsServing(ctx)
	if err != nil {
		return err
	}
	if !serving {
		return errors.New("containerd is not serving")
	}
	return nil
}

func exitStatus(err error) string {
	if err == nil {
		return "0"
	}
	return err.Error()
}

// withoutNotifySocket is env without NOTIFY_SOCKET. Under a systemd unit of
// Type=notify the unit's readiness is slipwayd's (its CRI serves), and
// containerd would otherwise report itself ready to the same socket first.
func withoutNotifySocket(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			out = append(out, kv)
		}
	}
	return out
}
