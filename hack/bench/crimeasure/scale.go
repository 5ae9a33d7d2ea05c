package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// scaleResult is the JSON result of one scale run: per operation, every
// call's duration in nanoseconds, in call order.
type scaleResult struct {
	Pods       int                `json:"pods"`
	Containers int                `json:"containersPerPod"`
	Setup      time.Duration      `json:"setupNanos"`
	Ops        map[string][]int64 `json:"ops"`
}

// scaleOps are timed in this order, each SAMPLES times in a row.
var scaleOps = []string{"ListContainers", "ListPodSandbox", "ContainerStatus", "ListContainerStats", "ListPodSandboxStats"}

func runScale(args []string) error {
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	var c common
	c.register(fs)
	pods := fs.Int("pods", 20, "pods to run")
	per := fs.Int("containers", 10, "sleep containers per pod")
	samples := fs.Int("samples", 300, "calls per operation")
	budget := fs.Duration("op-budget", 20*time.Second, "stop an operation's calls after this long (at least 20 calls), so slow ones do not hold the machine")
	parallel := fs.Int("parallel", 2, "pods started at a time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rs, closeConn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	set := &podSet{rs: rs, image: c.image, logDir: c.logDir, prefix: "scale"}
	defer func() {
		if err := set.removeAll(); err != nil {
			fmt.Println("crimeasure: cleanup:", err)
		}
	}()
	t0 := time.Now()
	if err := set.run(ctx, *pods, *per, *parallel); err != nil {
		return err
	}
	res := scaleResult{Pods: *pods, Containers: *per, Setup: time.Since(t0), Ops: map[string][]int64{}}
	set.mu.Lock()
	ctrs := append([]string(nil), set.ctrs...)
	set.mu.Unlock()
	calls := map[string]func() error{
		"ListContainers": func() error {
			_, err := rs.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
			return err
		},
		"ListPodSandbox": func() error {
			_, err := rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
			return err
		},
		"ContainerStatus": func() error {
			_, err := rs.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: ctrs[rand.IntN(len(ctrs))]})
			return err
		},
		"ListContainerStats": func() error {
			_, err := rs.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
			return err
		},
		"ListPodSandboxStats": func() error {
			_, err := rs.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{})
			return err
		},
	}
	for _, op := range scaleOps {
		// One untimed call first: a cold cache is not what kubelet sees
		// every second.
		if err := calls[op](); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		start := time.Now()
		for i := 0; i < *samples && (i < 20 || time.Since(start) < *budget); i++ {
			t := time.Now()
			if err := calls[op](); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			res.Ops[op] = append(res.Ops[op], time.Since(t).Nanoseconds())
		}
	}
	return writeJSON(c.out, res)
}
