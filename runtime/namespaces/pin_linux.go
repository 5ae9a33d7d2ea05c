// Package namespaces pins Linux namespaces for pods without a pause process:
// each namespace is created on a throwaway OS thread and kept alive by a
// bind mount of its nsfs file, as CRI-O's pinns does.
package namespaces

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Kind is a namespace type that can be pinned.
type Kind string

// The pinnable namespace kinds; the value is the /proc/PID/ns file name.
const (
	Net Kind = "net"
	IPC Kind = "ipc"
	UTS Kind = "uts"
)

var cloneFlags = map[Kind]int{Net: unix.CLONE_NEWNET, IPC: unix.CLONE_NEWIPC, UTS: unix.CLONE_NEWUTS}

// Request says which namespaces to create and how to prepare them.
type Request struct {
	// Dir receives one file per pinned namespace, named by its Kind.
	Dir   string
	Kinds []Kind
	// Hostname is set in the new UTS namespace; requires UTS in Kinds.
	Hostname string
	// Sysctls are written in the new namespaces (net.* need Net, IPC ones
	// need IPC), keyed as kubelet sends them ("net.ipv4.ip_forward" or
	// "net/ipv4/ip_forward").
	Sysctls map[string]string
	// User, when set, creates the namespaces in a new user namespace that
	// owns them, pinned too as Dir/user.
	User *UserNS
}

// Pinned maps each pinned namespace kind to its bind-mounted file.
type Pinned map[Kind]string

// Pin creates the requested namespaces, applies hostname and sysctls inside
// them, and bind-mounts each onto Dir/KIND. On error nothing is left pinned.
// A req.User with Keep needs PinHeld.
func Pin(req Request) (Pinned, error) {
	if req.User != nil && req.User.Keep {
		return nil, errors.New("a user namespace holder to keep needs PinHeld")
	}
	pinned, _, err := PinHeld(req)
	return pinned, err
}

// PinHeld is Pin that also returns the process a req.User with Keep left
// running (nil otherwise). On error nothing is left pinned or running.
func PinHeld(req Request) (Pinned, *Held, error) {
	if len(req.Kinds) == 0 && req.User == nil {
		return Pinned{}, nil, nil
	}
	if err := os.MkdirAll(req.Dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("creating namespace dir: %w", err)
	}
	flags := 0
	pinned := Pinned{}
	for _, k := range req.Kinds {
		f, ok := cloneFlags[k]
		if !ok {
			return nil, nil, fmt.Errorf("namespace kind %q cannot be pinned", k)
		}
		flags |= f
		pinned[k] = filepath.Join(req.Dir, string(k))
	}
	if req.Hostname != "" {
		if _, ok := pinned[UTS]; !ok {
			return nil, nil, errors.New("a hostname needs a new UTS namespace")
		}
	}
	if req.User != nil {
		return pinUser(req, pinned, flags)
	}
	errc := make(chan error, 1)
	// The thread that unshares never returns to the Go scheduler: the
	// goroutine ends while locked, so the runtime discards the thread.
	go func() {
		runtime.LockOSThread()
		errc <- pinOnThread(req, flags, pinned)
	}()
	if err := <-errc; err != nil {
		for _, p := range pinned {
			_ = Unpin(p)
		}
		return nil, nil, err
	}
	return pinned, nil, nil
}

// pinOnThread runs on a locked thread that is discarded afterwards.
func pinOnThread(req Request, flags int, pinned Pinned) error {
	if err := unix.Unshare(flags); err != nil {
		return fmt.Errorf("unshare namespaces: %w", err)
	}
	if err := applyInside(req); err != nil {
		return err
	}
	tid := unix.Gettid()
	for kind, path := range pinned {
		if err := bindNamespace(fmt.Sprintf("/proc/self/task/%d/ns/%s", tid, kind), path); err != nil {
			return err
		}
	}
	return nil
}

// applyInside sets req's hostname and sysctls in the calling thread's
// namespaces.
func applyInside(req Request) error {
	if req.Hostname != "" {
		if err := unix.Sethostname([]byte(req.Hostname)); err != nil {
			return fmt.Errorf("setting hostname: %w", err)
		}
	}
	for key, value := range req.Sysctls {
		if err := writeSysctl(key, value); err != nil {
			return err
		}
	}
	return nil
}

func bindNamespace(source, target string) error {
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o400)
	if err != nil {
		return fmt.Errorf("creating namespace file: %w", err)
	}
	f.Close()
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mounting %s to %s: %w", source, target, err)
	}
	return nil
}

// writeSysctl writes a sysctl of the calling thread's namespaces. A key with
// slashes is a path below /proc/sys taken literally (its dots belong to names,
// as in net/ipv4/conf/eth0.100/forwarding); dots separate the others.
func writeSysctl(key, value string) error {
	rel := key
	if !strings.Contains(key, "/") {
		rel = strings.ReplaceAll(key, ".", "/")
	}
	path := filepath.Join("/proc/sys", rel)
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		return fmt.Errorf("setting sysctl %s=%q: %w", key, value, err)
	}
	return nil
}

// Unpin unmounts and removes a pinned namespace file. A missing or already
// unmounted file is not an error.
func Unpin(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}

// Enter runs fn on a thread that has joined the namespace pinned at path,
// for reading per-namespace state (network statistics, sysctls). The thread
// is discarded afterwards.
func Enter(path string, kind Kind, fn func() error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening namespace %s: %w", path, err)
	}
	defer f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(f.Fd()), cloneFlags[kind]); err != nil {
			errc <- fmt.Errorf("joining namespace %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
