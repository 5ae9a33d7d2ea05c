package main

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podSet makes pods of sleep containers the way kubelet would (a log
// directory and a cgroup parent per pod, a log file per container) and
// removes them again, with the pod cgroups it named.
type podSet struct {
	rs      runtimeapi.RuntimeServiceClient
	image   string
	logDir  string
	prefix  string
	mu      sync.Mutex
	pods    []string // guarded by mu
	ctrs    []string // guarded by mu
	counter int      // guarded by mu
}

// run starts n pods with per containers each, parallel pods at a time.
func (p *podSet) run(ctx context.Context, n, per, parallel int) error {
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				errs <- p.runPod(ctx, i, per)
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *podSet) runPod(ctx context.Context, i, per int) error {
	p.mu.Lock()
	p.counter++
	name := fmt.Sprintf("%s-%d-%d", p.prefix, i, p.counter)
	p.mu.Unlock()
	logDir := filepath.Join(p.logDir, name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Uid: name, Namespace: "bench"},
		Hostname:     name,
		LogDirectory: logDir,
		// containerd's pod stats need a cgroup parent, which kubelet
		// always gives (cgroupfs driver: a path).
		Linux: &runtimeapi.LinuxPodSandboxConfig{CgroupParent: path.Join(cgroupRoot(), "pod"+name)},
	}
	pod, err := p.rs.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return fmt.Errorf("RunPodSandbox %s: %w", name, err)
	}
	p.mu.Lock()
	p.pods = append(p.pods, pod.PodSandboxId)
	p.mu.Unlock()
	for c := 0; c < per; c++ {
		cname := fmt.Sprintf("sleep-%d", c)
		ctr, err := p.rs.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
			PodSandboxId: pod.PodSandboxId,
			Config: &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: cname},
				Image:    &runtimeapi.ImageSpec{Image: p.image},
				Command:  []string{"sleep", "86400"},
				LogPath:  cname + ".log",
				Linux:    &runtimeapi.LinuxContainerConfig{},
			},
			SandboxConfig: cfg,
		})
		if err != nil {
			return fmt.Errorf("CreateContainer %s/%s: %w", name, cname, err)
		}
		p.mu.Lock()
		p.ctrs = append(p.ctrs, ctr.ContainerId)
		p.mu.Unlock()
		if _, err := p.rs.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctr.ContainerId}); err != nil {
			return fmt.Errorf("StartContainer %s/%s: %w", name, cname, err)
		}
	}
	return nil
}

// removeAll stops and removes every pod the set made, on a fresh context
// (the caller's may be done).
func (p *podSet) removeAll() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p.mu.Lock()
	pods := p.pods
	p.pods, p.ctrs = nil, nil
	p.mu.Unlock()
	var first error
	defer removeCgroups()
	for _, id := range pods {
		if _, err := p.rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil && first == nil {
			first = fmt.Errorf("StopPodSandbox %s: %w", id, err)
		}
		if _, err := p.rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil && first == nil {
			first = fmt.Errorf("RemovePodSandbox %s: %w", id, err)
		}
	}
	return first
}

// cgroupRoot is the cgroup under which this process's pods get their
// cgroup parents: nothing else uses it.
func cgroupRoot() string { return fmt.Sprintf("/slipway-bench-%d", os.Getpid()) }

// removeCgroups removes the (empty) pod cgroups under cgroupRoot in every
// hierarchy, deepest first; the runtimes remove only their containers'.
func removeCgroups() {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*" + cgroupRoot())
	if d := "/sys/fs/cgroup" + cgroupRoot(); dirExists(d) {
		roots = append(roots, d)
	}
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				fmt.Println("crimeasure: cgroup", d, "left:", err)
			}
		}
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
