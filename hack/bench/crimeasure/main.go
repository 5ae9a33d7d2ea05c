// Command crimeasure is the part of `make bench` that critest has no
// benchmark for. It talks CRI to one runtime at a time (slipwayd or
// containerd's CRI, started by hack/bench/cri.sh) and writes JSON results;
// `report` turns the results of every runtime and round into markdown.
//
//	crimeasure scale  -endpoint unix:///S -pods 20 -containers 10 -samples 300 -out scale.json
//	    runs PODS pods with CONTAINERS sleep containers each, then times
//	    ListContainers, ListPodSandbox, ContainerStatus, ListContainerStats
//	    and ListPodSandboxStats SAMPLES times each (fewer when an operation's
//	    calls take longer than -op-budget), one call at a time.
//	crimeasure memory -endpoint unix:///S -pods 20 -daemon-pid PID -match DIR -out memory.json
//	    sums RSS and PSS (/proc/PID/smaps_rollup) of the runtime's
//	    non-workload processes before and after PODS pods with one sleep
//	    container each.
//	crimeasure kubelet -endpoint unix:///S -kubelet https://127.0.0.1:PORT -manifests DIR -node NAME -pods 10,50 -out kubelet.json
//	    through a standalone kubelet on that runtime: a warm-up pod, then
//	    for each count N, N two-container static pods placed at once; times
//	    each pod's start from the runtime's CRI records (see kubeletPhase)
//	    and removes the pods before the next count.
//	crimeasure report -results DIR -runtimes slipwayd,containerd -md FILE
//
// Nothing here asserts a duration: the figures are printed, not judged.
// Every pod it makes it removes again (the harness also removes leftovers).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: crimeasure scale|memory|kubelet|report [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "scale":
		err = runScale(os.Args[2:])
	case "memory":
		err = runMemory(os.Args[2:])
	case "kubelet":
		err = runKubelet(os.Args[2:])
	case "report":
		err = runReport(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (scale, memory, kubelet, report)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crimeasure:", err)
		os.Exit(1)
	}
}

// common are the flags of the commands that talk to a runtime.
type common struct {
	endpoint string
	image    string
	logDir   string
	out      string
	timeout  time.Duration
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.endpoint, "endpoint", "", "the runtime's CRI endpoint, unix:///path")
	fs.StringVar(&c.image, "image", "registry.k8s.io/e2e-test-images/busybox:1.29-2", "container image (has sleep)")
	fs.StringVar(&c.logDir, "log-dir", "", "pod log directories go under this directory (required)")
	fs.StringVar(&c.out, "out", "", "JSON result file (required)")
	fs.DurationVar(&c.timeout, "timeout", 15*time.Minute, "give up after this long")
}

func (c *common) check() error {
	switch {
	case c.endpoint == "":
		return fmt.Errorf("-endpoint is required")
	case c.logDir == "":
		return fmt.Errorf("-log-dir is required")
	case c.out == "":
		return fmt.Errorf("-out is required")
	}
	return nil
}

// connect dials the CRI endpoint and pulls the container image unless
// the runtime has it; the returned func closes the connection.
func (c *common) connect(ctx context.Context) (runtimeapi.RuntimeServiceClient, func(), error) {
	rs, is, closeConn, err := dial(c.endpoint)
	if err != nil {
		return nil, nil, err
	}
	spec := &runtimeapi.ImageSpec{Image: c.image}
	if st, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec}); err != nil || st.GetImage() == nil {
		if _, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec}); err != nil {
			closeConn()
			return nil, nil, fmt.Errorf("pulling %s: %w", c.image, err)
		}
	}
	return rs, closeConn, nil
}

// dial connects to a CRI endpoint; the returned func closes the connection.
func dial(endpoint string) (runtimeapi.RuntimeServiceClient, runtimeapi.ImageServiceClient, func(), error) {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("dialing %s: %w", endpoint, err)
	}
	return runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn), func() { _ = conn.Close() }, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
