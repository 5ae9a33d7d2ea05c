package namespaces

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPinAppliesHostnameAndSysctlsInsideOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	hostBefore, _ := os.Hostname()
	hostShmmni := readFile(t, "/proc/sys/kernel/shmmni")
	dir := t.TempDir()
	pinned, err := Pin(Request{
		Dir:      dir,
		Kinds:    []Kind{Net, IPC, UTS},
		Hostname: "pinned-pod",
		Sysctls:  map[string]string{"net/ipv4/ip_unprivileged_port_start": "0", "kernel.shmmni": "1234"},
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

	enterRead := func(kind Kind, path string) string {
		var got string
		if err := Enter(pinned[kind], kind, func() error {
			got = readFile(t, path)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	var name string
	if err := Enter(pinned[UTS], UTS, func() error {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return err
		}
		name = unix.ByteSliceToString(u.Nodename[:])
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if name != "pinned-pod" {
		t.Errorf("hostname in pod = %q, want pinned-pod", name)
	}
	if got := enterRead(Net, "/proc/sys/net/ipv4/ip_unprivileged_port_start"); got != "0" {
		t.Errorf("net sysctl in pod = %q, want 0", got)
	}
	if got := enterRead(IPC, "/proc/sys/kernel/shmmni"); got != "1234" {
		t.Errorf("ipc sysctl in pod = %q, want 1234", got)
	}
	if h, _ := os.Hostname(); h != hostBefore {
		t.Errorf("host hostname changed to %q", h)
	}
	if got := readFile(t, "/proc/sys/kernel/shmmni"); got != hostShmmni {
		t.Errorf("host shmmni changed to %q", got)
	}
}

func TestPinFailureLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	_, err := Pin(Request{Dir: dir, Kinds: []Kind{Net}, Sysctls: map[string]string{"net.no.such.sysctl": "1"}})
	if err == nil || !strings.Contains(err.Error(), "net.no.such.sysctl") {
		t.Fatalf("Pin = %v, want an error naming the sysctl", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left %d files in %s", len(entries), dir)
	}
	if err := Unpin(dir + "/net"); err != nil {
		t.Errorf("Unpin of a missing file: %v", err)
	}
}

func TestSysctlKind(t *testing.T) {
	for key, want := range map[string]Kind{
		"net.ipv4.ip_forward": Net, "net/ipv4/conf/eth0.100/forwarding": Net, "kernel.shmmax": IPC, "fs.mqueue.msg_max": IPC, "kernel.domainname": UTS,
		"kernel.pid_max": "", "vm.swappiness": "", "": "", "net.ipv4 .x": "",
	} {
		got, err := SysctlKind(key)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("SysctlKind(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
