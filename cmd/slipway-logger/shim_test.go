package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// loggerBinary is the slipway-logger built once for the tests in this
// package, by TestMain.
var loggerBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slipway-logger-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	loggerBinary = filepath.Join(dir, "slipway-logger")
	build := exec.Command("go", "build", "-o", loggerBinary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building slipway-logger:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// shimIO starts a logging binary exactly as containerd-shim-runc-v2 v2.4.2
// does for a "binary" or "binary-v2" log URI (process.NewBinaryIO and
// NewBinaryCmd): the query as "key value" arguments in map order, only
// CONTAINER_ID and CONTAINER_NAMESPACE in the environment, the read ends of
// a stdout and a stderr pipe as fds 3 and 4, the write end of a ready pipe as
// fd 5, and, for binary-v2, an error unless a byte arrives on it.
type shimIO struct {
	cmd        *exec.Cmd
	outW, errW *os.File     // the container's stdout and stderr
	stderr     bytes.Buffer // the logger's own stderr (the shim gives it /dev/null)
	exited     chan error
}

func startLikeShim(t *testing.T, uri *url.URL) (*shimIO, error) {
	t.Helper()
	var args []string
	for k, vs := range uri.Query() {
		args = append(args, k)
		if len(vs) > 0 {
			args = append(args, vs[0])
		}
	}
	s := &shimIO{exited: make(chan error, 1)}
	s.cmd = exec.Command(uri.Path, args...)
	s.cmd.Env = []string{"CONTAINER_ID=c1", "CONTAINER_NAMESPACE=k8s.io"}
	s.cmd.Stderr = &s.stderr

	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer readyR.Close()
	s.outW, s.errW = outW, errW
	s.cmd.ExtraFiles = []*os.File{outR, errR, readyW}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		s.outW.Close()
		s.errW.Close()
		s.cmd.Process.Kill() // by pid; a no-op once it has exited
		<-s.exited
	})
	readyW.Close()
	// The shim closes its copies of the read ends after the container
	// starts (CloseAfterStart); closing them now is equivalent.
	defer outR.Close()
	defer errR.Close()

	b := make([]byte, 1)
	n, err := readyR.Read(b)
	if err != nil && err != io.EOF {
		return s, fmt.Errorf("failed to read from logging binary: %w", err)
	}
	if uri.Scheme == "binary-v2" && n == 0 {
		return s, errors.New("logging binary did not call ready (it may have crashed or exited prematurely)")
	}
	return s, nil
}

// run runs a shell script as the "container", writing to the logger's pipes.
func (s *shimIO) run(t *testing.T, script string) {
	t.Helper()
	c := exec.Command("/bin/sh", "-c", script)
	c.Stdout, c.Stderr = s.outW, s.errW
	if err := c.Run(); err != nil {
		t.Fatalf("container script: %v", err)
	}
}

// closeLikeShim does what binaryIO.Close does at task delete: close the
// pipes, send SIGTERM and wait up to 12 seconds for the exit. It returns the
// exit error (nil for status 0).
func (s *shimIO) closeLikeShim(t *testing.T) error {
	t.Helper()
	s.outW.Close()
	s.errW.Close()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("SIGTERM: %v", err)
	}
	return s.wait(t, 12*time.Second)
}

func (s *shimIO) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-s.exited:
		s.exited <- err // for the cleanup
		return err
	case <-time.After(timeout):
		t.Fatalf("logger still running after %v; stderr: %s", timeout, s.stderr.String())
		return nil
	}
}

// rss is the logger's resident set size as /proc reports it.
func (s *shimIO) rss() string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return err.Error()
	}
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		if bytes.HasPrefix(line, []byte("VmRSS:")) {
			return string(bytes.TrimSpace(line[len("VmRSS:"):]))
		}
	}
	return "unknown"
}
