package pod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/oomscore"
	"golang.org/x/sys/unix"
)

// infraPidFile, in a pod's state dir, records its direct infra process:
// "PID STARTTIME CGROUPSPATH", so a restarted slipwayd finds it and never
// signals a recycled pid.
const infraPidFile = "infra.pid"

// DirectInfra runs a pod's infra process without a shim or runc: it is
// forked from a thread that has joined the pod's pinned namespaces, into a
// new PID namespace, chrooted into the synthetic rootfs, as uid 65535, and
// put in the pod's cgroup (cgroupfs driver). It starts in a few
// milliseconds instead of the ~100 ms a shim and runc take, and outlives
// slipwayd (init adopts it).
type DirectInfra struct {
	rootfs string
	// stateDir holds one directory per pod (STATE/pods/ID).
	stateDir string

	mu sync.Mutex
	// exited has a channel per infra process this slipwayd started,
	// closed once it is reaped; mu guards it.
	exited map[string]chan struct{}
}

// NewDirectInfra prepares rootfsDir with the infra binary, like NewInfra.
func NewDirectInfra(binary, rootfsDir, podStateDir string) (*DirectInfra, error) {
	if err := prepareRootfs(binary, rootfsDir); err != nil {
		return nil, err
	}
	return &DirectInfra{rootfs: rootfsDir, stateDir: podStateDir, exited: map[string]chan struct{}{}}, nil
}

var _ InfraAdopter = (*DirectInfra)(nil)

// Image is "": the direct infra always runs slipway's own binary.
func (d *DirectInfra) Image() string { return "" }

func (d *DirectInfra) pidFile(id string) string { return filepath.Join(d.stateDir, id, infraPidFile) }

// Start forks the infra process of pod p into its namespaces and cgroup.
// A pod with a user namespace cannot be joined from here: its infra is the
// process that created the namespace (Adopt).
func (d *DirectInfra) Start(ctx context.Context, p Sandbox, cgroupsPath string) error {
	if _, ok := p.Namespaces[namespaces.User]; ok {
		return fmt.Errorf("the direct infra cannot join pod %s's user namespace; it adopts the process that made it", p.ID)
	}
	var nsFiles []*os.File
	defer func() {
		for _, f := range nsFiles {
			f.Close()
		}
	}()
	var flags []int
	for _, kind := range []namespaces.Kind{namespaces.Net, namespaces.IPC, namespaces.UTS} {
		path, ok := p.Namespaces[kind]
		if !ok {
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("opening pod namespace: %w", err)
		}
		nsFiles = append(nsFiles, f)
		flags = append(flags, map[namespaces.Kind]int{namespaces.Net: unix.CLONE_NEWNET, namespaces.IPC: unix.CLONE_NEWIPC, namespaces.UTS: unix.CLONE_NEWUTS}[kind])
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devNull.Close()

	type started struct {
		proc *os.Process
		err  error
	}
	result := make(chan started, 1)
	go func() {
		// The thread joins the pod's namespaces and is never returned to
		// the scheduler: the goroutine ends locked, so the runtime drops it.
		runtime.LockOSThread()
		for i, f := range nsFiles {
			if err := unix.Setns(int(f.Fd()), flags[i]); err != nil {
				result <- started{err: fmt.Errorf("joining pod namespace: %w", err)}
				return
			}
		}
		proc, err := os.StartProcess(infraPath, []string{infraPath}, &os.ProcAttr{
			Dir:   "/",
			Env:   infraEnv,
			Files: []*os.File{devNull, devNull, devNull},
			Sys: &syscall.SysProcAttr{
				Chroot:     d.rootfs,
				Cloneflags: syscall.CLONE_NEWPID,
				Setsid:     true,
				Credential: &syscall.Credential{Uid: infraUID, Gid: infraUID, Groups: []uint32{}},
			},
		})
		result <- started{proc, err}
	}()
	s := <-result
	if s.err != nil {
		return fmt.Errorf("starting infra process: %w", s.err)
	}
	return d.Adopt(ctx, p, s.proc, cgroupsPath)
}

// Adopt makes proc, already in pod p's namespaces, its infra process: it
// is put in cgroupsPath and recorded. On error proc is killed and reaped.
func (d *DirectInfra) Adopt(_ context.Context, p Sandbox, proc *os.Process, cgroupsPath string) error {
	done := make(chan struct{})
	go func() { _, _ = proc.Wait(); close(done) }()
	d.mu.Lock()
	d.exited[p.ID] = done
	d.mu.Unlock()

	// Recorded first, so that a crash from here on leaves a process that
	// start-up reconciliation finds (pod.Runtime's caller removes the
	// infra of a pod without a record).
	start, err := startTime(proc.Pid)
	if err == nil {
		err = writeFileAtomic(d.pidFile(p.ID), fmt.Sprintf("%d %d %s", proc.Pid, start, cgroupsPath))
	}
	if err != nil {
		err = fmt.Errorf("recording infra process: %w", err)
	} else {
		err = d.place(proc.Pid, cgroupsPath)
	}
	if err != nil {
		d.abort(p.ID, proc, done, cgroupsPath)
		return err
	}
	return nil
}

// abort ends an infra process whose start failed half-way: it kills and
// reaps it and removes its pid file and the cgroup place may have made.
func (d *DirectInfra) abort(id string, proc *os.Process, done <-chan struct{}, cgroupsPath string) {
	_ = proc.Kill()
	<-done
	d.mu.Lock()
	delete(d.exited, id)
	d.mu.Unlock()
	_ = os.Remove(d.pidFile(id))
	if cgroupsPath != "" {
		_ = deleteCgroup(cgroupsPath)
	}
}

// place puts pid in the cgroup at cgroupsPath (cgroupfs) and sets its
// oom_score_adj, clamped to what this process may set.
func (d *DirectInfra) place(pid int, cgroupsPath string) error {
	if cgroupsPath != "" {
		if cgroups.Mode() == cgroups.Unified {
			m, err := cgroup2.NewManager("/sys/fs/cgroup", cgroupsPath, &cgroup2.Resources{})
			if err != nil {
				return fmt.Errorf("creating infra cgroup %s: %w", cgroupsPath, err)
			}
			if err := m.AddProc(uint64(pid)); err != nil {
				return fmt.Errorf("joining infra cgroup %s: %w", cgroupsPath, err)
			}
		} else {
			cg, err := cgroup1.New(cgroup1.StaticPath(cgroupsPath), &specs.LinuxResources{})
			if err != nil {
				return fmt.Errorf("creating infra cgroup %s: %w", cgroupsPath, err)
			}
			if err := cg.Add(cgroup1.Process{Pid: pid}); err != nil {
				return fmt.Errorf("joining infra cgroup %s: %w", cgroupsPath, err)
			}
		}
	}
	adj := strconv.Itoa(oomscore.Clamp(infraOOMScoreAdj))
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid), []byte(adj), 0); err != nil {
		return fmt.Errorf("setting infra oom_score_adj: %w", err)
	}
	return nil
}

// Pid is the pid of pod id's running infra process.
func (d *DirectInfra) Pid(ctx context.Context, id string) (uint32, error) {
	pid, _, err := d.running(id)
	if err != nil {
		return 0, err
	}
	return uint32(pid), nil
}

// running reads the pod's pid file and checks the process is still the
// one it names; errdefs.ErrNotFound when there is none.
func (d *DirectInfra) running(id string) (int, string, error) {
	b, err := os.ReadFile(d.pidFile(id))
	if errors.Is(err, os.ErrNotExist) {
		return 0, "", fmt.Errorf("infra process of pod %s: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return 0, "", err
	}
	fields := strings.SplitN(strings.TrimSpace(string(b)), " ", 3)
	if len(fields) < 2 {
		return 0, "", fmt.Errorf("infra pid file of pod %s is malformed", id)
	}
	pid, _ := strconv.Atoi(fields[0])
	want, _ := strconv.ParseUint(fields[1], 10, 64)
	cgroupsPath := ""
	if len(fields) == 3 {
		cgroupsPath = fields[2]
	}
	if got, err := startTime(pid); err != nil || got != want {
		return 0, cgroupsPath, fmt.Errorf("infra process of pod %s is gone: %w", id, errdefs.ErrNotFound)
	}
	return pid, cgroupsPath, nil
}

// Stop kills pod id's infra process, waits until it is gone and removes
// its cgroup. Missing is not an error.
func (d *DirectInfra) Stop(ctx context.Context, id string) error {
	pid, cgroupsPath, err := d.running(id)
	if err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	if err == nil {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("killing infra process: %w", err)
		}
		if err := d.waitGone(ctx, id, pid); err != nil {
			return err
		}
	}
	if cgroupsPath != "" {
		if err := deleteCgroup(cgroupsPath); err != nil {
			return err
		}
	}
	if err := os.Remove(d.pidFile(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Remove is Stop: the direct infra leaves nothing else behind.
func (d *DirectInfra) Remove(ctx context.Context, id string) error { return d.Stop(ctx, id) }

// waitGone waits for a killed infra process to be reaped: by this
// slipwayd when it started it, else by init.
func (d *DirectInfra) waitGone(ctx context.Context, id string, pid int) error {
	d.mu.Lock()
	done, ours := d.exited[id]
	delete(d.exited, id)
	d.mu.Unlock()
	if ours {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func deleteCgroup(path string) error {
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.Load(path)
		if err != nil {
			return nil
		}
		return m.Delete()
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(path))
	if err != nil {
		return nil
	}
	if err := cg.Delete(); err != nil && !errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return fmt.Errorf("removing infra cgroup %s: %w", path, err)
	}
	return nil
}

// startTime is field 22 of /proc/PID/stat: when the process started, in
// clock ticks since boot; together with the pid it names one process.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat is malformed", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

func writeFileAtomic(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
