package namespaces

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// User is the user namespace kind. A pod's user namespace owns its other
// pinned namespaces, so that root in the pod is root over its network,
// IPC and UTS namespaces (network sysctls, sysfs) and nothing else.
const User Kind = "user"

// UserNS asks Pin for a user namespace that owns the pinned namespaces.
// A multi-threaded process (any Go program) can neither unshare nor join a
// user namespace, so a child process creates them all with one clone(2);
// Pin bind-mounts the child's namespace files and then, unless Keep, kills
// and reaps it.
type UserNS struct {
	// UIDs and GIDs are the namespace's mappings (container ID to host ID).
	UIDs, GIDs []specs.LinuxIDMapping
	// Spawn starts the child with attr, which carries the clone flags and
	// the mappings; the child must stay alive until Pin kills it (any
	// program that waits for a signal). Spawn may add to attr (a chroot,
	// credentials inside the namespace). Required.
	Spawn func(attr *syscall.SysProcAttr) (*os.Process, error)
	// Keep makes the child also create a PID namespace and leaves it
	// running: it becomes the pod's infra process, PID 1 of a PID
	// namespace owned by the user namespace. Pin returns it in Held.
	Keep bool
}

// Held is the process a UserNS with Keep left running; the caller owns it.
type Held struct {
	Process *os.Process
}

// pinUser is Pin for a request with a user namespace: Dir/user and the
// other kinds are pinned from one child process.
func pinUser(req Request, pinned Pinned, flags int) (Pinned, *Held, error) {
	u := req.User
	if u.Spawn == nil {
		return nil, nil, errors.New("a user namespace needs a spawn function")
	}
	pinned[User] = filepath.Join(req.Dir, string(User))
	flags |= unix.CLONE_NEWUSER
	if u.Keep {
		flags |= unix.CLONE_NEWPID
	}
	attr := &syscall.SysProcAttr{
		Cloneflags:  uintptr(flags),
		UidMappings: idMaps(u.UIDs),
		GidMappings: idMaps(u.GIDs),
		// setgroups must stay allowed in the namespace: runc calls it for
		// every container process. The mappings are written by this
		// privileged process, so "deny" is not needed to write gid_map.
		GidMappingsEnableSetgroups: true,
	}
	if !u.Keep {
		attr.Pdeathsig = syscall.SIGKILL
	}
	type result struct {
		proc *os.Process
		err  error
	}
	spawned := make(chan result, 1)
	release := make(chan struct{})
	// The child's parent-death signal follows the thread that forked it, so
	// that thread stays locked (and alive) until the child is reaped.
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		proc, err := u.Spawn(attr)
		spawned <- result{proc, err}
		if err == nil {
			<-release
		}
	}()
	s := <-spawned
	if s.err != nil {
		return nil, nil, fmt.Errorf("starting user namespace holder: %w", s.err)
	}
	defer close(release)
	undo := func() {
		_ = s.proc.Kill()
		_, _ = s.proc.Wait()
		for _, p := range pinned {
			_ = Unpin(p)
		}
	}
	for kind, path := range pinned {
		if err := bindNamespace(fmt.Sprintf("/proc/%d/ns/%s", s.proc.Pid, kind), path); err != nil {
			undo()
			return nil, nil, err
		}
	}
	if err := prepare(req, pinned); err != nil {
		undo()
		return nil, nil, err
	}
	if u.Keep {
		return pinned, &Held{Process: s.proc}, nil
	}
	_ = s.proc.Kill()
	_, _ = s.proc.Wait()
	return pinned, nil, nil
}

// prepare sets the hostname and sysctls of pinned namespaces from a thread
// that joins them (but not their user namespace: this process is root over
// every namespace a child user namespace owns). The thread is discarded.
func prepare(req Request, pinned Pinned) error {
	if req.Hostname == "" && len(req.Sysctls) == 0 {
		return nil
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var kinds []Kind
	for _, k := range []Kind{Net, IPC, UTS} {
		if p, ok := pinned[k]; ok {
			f, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("opening namespace %s: %w", p, err)
			}
			files = append(files, f)
			kinds = append(kinds, k)
		}
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		for i, f := range files {
			if err := unix.Setns(int(f.Fd()), cloneFlags[kinds[i]]); err != nil {
				errc <- fmt.Errorf("joining %s namespace: %w", kinds[i], err)
				return
			}
		}
		errc <- applyInside(req)
	}()
	return <-errc
}

func idMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, e := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(e.ContainerID), HostID: int(e.HostID), Size: int(e.Size)}
	}
	return out
}
