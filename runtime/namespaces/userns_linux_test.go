package namespaces

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// sleepSpawn starts sleep as the holder: any program that waits.
func sleepSpawn(t *testing.T) func(*syscall.SysProcAttr) (*os.Process, error) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("needs sleep")
	}
	return func(attr *syscall.SysProcAttr) (*os.Process, error) {
		return os.StartProcess(sleep, []string{"sleep", "60"}, &os.ProcAttr{Sys: attr})
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func owner(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_USERNS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestPinUserNamespaceOwnsTheOthers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 65536 * 40, Size: 65536}}
	dir := t.TempDir()
	pinned, err := Pin(Request{
		Dir: dir, Kinds: []Kind{Net, IPC, UTS}, Hostname: "userns-pod",
		Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"},
		User:    &UserNS{UIDs: m, GIDs: m, Spawn: sleepSpawn(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, p := range pinned {
			if err := Unpin(p); err != nil {
				t.Error(err)
			}
		}
	}()
	if len(pinned) != 4 {
		t.Fatalf("pinned %v, want user, net, ipc and uts", pinned)
	}
	user := inode(t, pinned[User])
	for _, k := range []Kind{Net, IPC, UTS} {
		if got := owner(t, pinned[k]); got != user {
			t.Errorf("%s namespace is owned by user namespace %d, want the pinned %d", k, got, user)
		}
	}
	var got string
	if err := Enter(pinned[Net], Net, func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
		got = strings.TrimSpace(string(b))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got != "0" {
		t.Errorf("net sysctl in pod = %q, want 0", got)
	}
}

func TestPinUserNamespaceKeepNeedsPinHeld(t *testing.T) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 65536 * 40, Size: 65536}}
	if _, err := Pin(Request{Dir: t.TempDir(), User: &UserNS{UIDs: m, GIDs: m, Keep: true}}); err == nil {
		t.Fatal("Pin kept a holder it cannot return")
	}
}

func TestPinUserNamespaceFailureLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 65536 * 40, Size: 65536}}
	var holder *os.Process
	spawn := sleepSpawn(t)
	dir := t.TempDir()
	_, held, err := PinHeld(Request{
		Dir: dir, Kinds: []Kind{Net}, Sysctls: map[string]string{"net.no.such.sysctl": "1"},
		User: &UserNS{UIDs: m, GIDs: m, Keep: true, Spawn: func(attr *syscall.SysProcAttr) (*os.Process, error) {
			p, err := spawn(attr)
			holder = p
			return p, err
		}},
	})
	if err == nil || held != nil {
		t.Fatalf("PinHeld = %v, %v; want an error and no holder", held, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left %d files in %s", len(entries), dir)
	}
	if holder == nil {
		t.Fatal("the holder was never started")
	}
	if err := holder.Signal(syscall.Signal(0)); err == nil {
		t.Errorf("the holder %d still runs", holder.Pid)
	}
}
