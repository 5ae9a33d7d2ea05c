package namespaces

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// A process started inside a pinned namespace is killed; one in the node's
// namespaces is not.
func TestKillMembersKillsOnlyProcessesInThePinnedNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	pinned, err := Pin(Request{Dir: dir, Kinds: []Kind{Net, UTS}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, p := range pinned {
			_ = Unpin(p)
		}
	}()

	outside := exec.Command("sleep", "300")
	if err := outside.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = outside.Process.Kill(); _ = outside.Wait() }()
	inside := startIn(t, pinned[Net])
	defer func() { _ = inside.Process.Kill(); _ = inside.Wait() }()

	killed, err := KillMembers(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(killed, []int{inside.Process.Pid}) {
		t.Fatalf("killed %v, want only %d (the process in the pinned netns)", killed, inside.Process.Pid)
	}
	err = inside.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("the process inside ended with %v, want SIGKILL", err)
	}
	if err := outside.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the process outside was hit: %v", err)
	}

	// Pins of the node's own namespaces match nothing.
	hostDir := t.TempDir()
	if err := bindNamespace("/proc/thread-self/ns/net", hostDir+"/net"); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = Unpin(hostDir + "/net") }()
	if killed, err := KillMembers(hostDir); err != nil || len(killed) != 0 {
		t.Errorf("KillMembers of a pin of the node's netns = %v, %v; want nothing", killed, err)
	}
}

// startIn starts `sleep 300` from a thread that joined the network
// namespace at pin (the thread is dropped afterwards).
func startIn(t *testing.T, pin string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		f, err := os.Open(pin)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- cmd.Start()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return cmd
}
