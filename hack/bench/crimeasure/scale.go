package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// scaleResult is the JSON result of one scale run: per operation, every
// call's duration in nanoseconds, in call order.
type scaleResult struct {
	Pods       int           `json:"pods"`
	Containers int           `json:"containersPerPod"`
	Setup      time.Duration `json:"setupNanos"`
	// Ops are the calls as kubelet makes them: the response decoded.
	Ops map[string][]int64 `json:"ops"`
	// Undecoded are the same calls (rawOps) with the response left as
	// bytes: the runtime's time and the transport's, without the client's
	// decoding, which for 200 containers is a large part of Ops.
	Undecoded map[string][]int64 `json:"undecoded,omitempty"`
	// ResponseBytes is the size of each operation's last response.
	ResponseBytes map[string]int `json:"responseBytes,omitempty"`
}

// scaleOps are timed in this order, each SAMPLES times in a row; then
// rawOps again, undecoded.
var (
	scaleOps = []string{"ListContainers", "ListPodSandbox", "ContainerStatus", "ListContainerStats", "ListPodSandboxStats"}
	rawOps   = []string{"ListContainers", "ListPodSandbox", "ContainerStatus"}
)

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
	res := scaleResult{Pods: *pods, Containers: *per, Setup: time.Since(t0),
		Ops: map[string][]int64{}, Undecoded: map[string][]int64{}, ResponseBytes: map[string]int{}}
	set.mu.Lock()
	ctrs := append([]string(nil), set.ctrs...)
	set.mu.Unlock()
	// request is op's request (rawOps); ContainerStatus asks for a random
	// container.
	request := func(op string) proto.Message {
		switch op {
		case "ListContainers":
			return &runtimeapi.ListContainersRequest{}
		case "ListPodSandbox":
			return &runtimeapi.ListPodSandboxRequest{}
		}
		return &runtimeapi.ContainerStatusRequest{ContainerId: ctrs[rand.IntN(len(ctrs))]}
	}
	calls := map[string]func() (proto.Message, error){
		"ListContainers": func() (proto.Message, error) {
			return rs.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		},
		"ListPodSandbox": func() (proto.Message, error) {
			return rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		},
		"ContainerStatus": func() (proto.Message, error) {
			return rs.ContainerStatus(ctx, request("ContainerStatus").(*runtimeapi.ContainerStatusRequest))
		},
		"ListContainerStats": func() (proto.Message, error) {
			return rs.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
		},
		"ListPodSandboxStats": func() (proto.Message, error) {
			return rs.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{})
		},
	}
	for _, op := range scaleOps {
		last, err := timeCalls(res.Ops, op, *samples, *budget, calls[op])
		if err != nil {
			return err
		}
		res.ResponseBytes[op] = proto.Size(last)
	}
	raw, err := dialRaw(c.endpoint)
	if err != nil {
		return err
	}
	defer raw.Close()
	for _, op := range rawOps {
		call := func() (proto.Message, error) {
			_, err := rawCall(ctx, raw, op, request(op))
			return nil, err
		}
		if _, err := timeCalls(res.Undecoded, op, *samples, *budget, call); err != nil {
			return err
		}
	}
	return writeJSON(c.out, res)
}

// timeCalls times up to samples calls of op, one at a time (fewer after
// budget, but at least 20), after one untimed call: a cold cache is not
// what kubelet sees every second. It returns the last call's response.
//
// The client's own garbage collector is held off while the calls are
// timed (it collects before them): decoding a list of 200 containers
// allocates about 0.3 MB, so this small process collected every 20-30
// lists, 1.5-3 ms each on 2 cores, and those pauses were in the times of
// whichever runtime was being measured (most of ListContainers' p90-p99
// on a quiet machine). The calls' garbage, at most a few hundred MB, is
// collected after them.
func timeCalls(into map[string][]int64, op string, samples int, budget time.Duration, call func() (proto.Message, error)) (proto.Message, error) {
	last, err := call()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer runtime.GC()
	start := time.Now()
	for i := 0; i < samples && (i < 20 || time.Since(start) < budget); i++ {
		t := time.Now()
		if last, err = call(); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		into[op] = append(into[op], time.Since(t).Nanoseconds())
	}
	return last, nil
}

// dialRaw connects to a CRI endpoint for rawCall.
func dialRaw(endpoint string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{}), grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", endpoint, err)
	}
	return conn, nil
}

// rawCall calls RuntimeService method op on a dialRaw connection and
// returns the size of the response, which it does not decode.
func rawCall(ctx context.Context, conn *grpc.ClientConn, op string, req proto.Message) (int, error) {
	var out rawResponse
	err := conn.Invoke(ctx, "/runtime.v1.RuntimeService/"+op, req, &out)
	return out.size, err
}

// rawResponse is an undecoded response: only its size is kept (rawCodec).
type rawResponse struct{ size int }

// rawCodec encodes requests as protobuf and leaves responses undecoded.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, err := proto.Marshal(v.(proto.Message))
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	v.(*rawResponse).size = data.Len()
	return nil
}

func (rawCodec) Name() string { return "proto" }
