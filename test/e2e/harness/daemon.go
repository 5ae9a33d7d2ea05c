package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Daemon is a slipwayd process a suite runs, with its own root, state and
// CRI socket under the suite's work dir and its output in a log file there.
type Daemon struct {
	// Args is the command line, the binary first; Start runs it as it is.
	Args   []string
	Root   string
	State  string
	Socket string
	Log    *os.File
	Cmd    *exec.Cmd
	// Conn is a client connection to Socket; it reconnects by itself
	// across restarts.
	Conn *grpc.ClientConn
}

// NewDaemon prepares slipwayd from $SLIPWAYD_BIN on work/root and
// work/run, pulling through hostsDir, with pods on the CNI configuration in
// cniConfDir, debug logging and extra flags. It does not start it.
func NewDaemon(work, hostsDir, cniConfDir string, extra ...string) (*Daemon, error) {
	bin := os.Getenv("SLIPWAYD_BIN")
	if bin == "" {
		return nil, errors.New("SLIPWAYD_BIN is not set: run the suites through make (make e2e, make e2e-kubelet)")
	}
	d := &Daemon{Root: filepath.Join(work, "root"), State: filepath.Join(work, "run")}
	d.Socket = filepath.Join(d.State, "slipway.sock")
	log, err := os.Create(filepath.Join(work, "slipwayd.log"))
	if err != nil {
		return nil, err
	}
	d.Log = log
	d.Args = append([]string{bin, "--root", d.Root, "--state", d.State, "--socket", d.Socket,
		"--registry-config-path", hostsDir, "--cni-conf-dir", cniConfDir,
		"--metrics-address", "127.0.0.1:0", "--log-level", "debug"}, extra...)
	d.Conn, err = grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Close()
		return nil, err
	}
	return d, nil
}

// Start runs Args with output to Log.
func (d *Daemon) Start() error {
	d.Cmd = exec.Command(d.Args[0], d.Args[1:]...)
	d.Cmd.Stdout, d.Cmd.Stderr = d.Log, d.Log
	return d.Cmd.Start()
}

// WaitServing waits up to a minute until the CRI answers Version.
func (d *Daemon) WaitServing(ctx context.Context) error {
	client := runtimeapi.NewRuntimeServiceClient(d.Conn)
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := client.Version(ctx, &runtimeapi.VersionRequest{})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slipwayd's CRI did not answer within a minute: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Terminate sends SIGTERM and waits up to 30 s for exit status 0 (then
// kills it). With an embedded containerd, that containerd must be gone too.
func (d *Daemon) Terminate() error {
	if err := d.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- d.Cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("slipwayd should exit 0 on SIGTERM: %w", err)
		}
	case <-time.After(30 * time.Second):
		_ = d.Cmd.Process.Kill()
		return errors.New("slipwayd did not exit within 30s of SIGTERM")
	}
	if d.Embedded() && d.ContainerdPid() != 0 {
		return fmt.Errorf("the embedded containerd (pid %d) should stop with slipwayd", d.ContainerdPid())
	}
	return nil
}

// Embedded reports whether slipwayd runs its own containerd.
func (d *Daemon) Embedded() bool {
	for _, a := range d.Args {
		if a == "--containerd-address" {
			return false
		}
	}
	return true
}

// ContainerdPid is the embedded containerd's pid from its pid file, or 0.
func (d *Daemon) ContainerdPid() int {
	b, err := os.ReadFile(filepath.Join(d.State, "containerd", "containerd.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// LogTail is the last lines of the log file.
func (d *Daemon) LogTail(lines int) string {
	b, _ := os.ReadFile(d.Log.Name())
	return Tail(string(b), lines)
}

// Tail is the last lines of s.
func Tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
