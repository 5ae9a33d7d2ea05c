// Command ctrwatch records the IDs of the containers and tasks a containerd
// creates, for hack/bench/cri.sh: the harness cleans up after its own
// containerd instances (slipwayd's embedded one and containerd's CRI) by
// these IDs and touches nothing else on the node.
//
//	ctrwatch --address /path/containerd.sock --out ids.txt
//
// It appends "NAMESPACE ID" lines (one per create event) until SIGTERM or
// until containerd goes away.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/typeurl/v2"
)

func main() {
	address := flag.String("address", "", "containerd socket")
	out := flag.String("out", "", "file to append IDs to")
	flag.Parse()
	if *address == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "ctrwatch: --address and --out are required")
		os.Exit(2)
	}
	if err := run(*address, *out); err != nil {
		fmt.Fprintln(os.Stderr, "ctrwatch:", err)
		os.Exit(1)
	}
}

func run(address, out string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	c, err := client.New(address)
	if err != nil {
		return err
	}
	defer c.Close()
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	// containerd may not serve yet when its socket appears: retry a while.
	deadline := time.Now().Add(time.Minute)
	for {
		err := watch(ctx, c, f)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// watch appends the ID of every create event to f until the stream ends.
func watch(ctx context.Context, c *client.Client, f *os.File) error {
	envelopes, errs := c.EventService().Subscribe(ctx, `topic=="/containers/create"`, `topic=="/tasks/create"`)
	for {
		select {
		case env, ok := <-envelopes:
			if !ok || env == nil {
				return nil
			}
			ev, err := typeurl.UnmarshalAny(env.Event)
			if err != nil {
				continue
			}
			var id string
			switch e := ev.(type) {
			case *eventstypes.ContainerCreate:
				id = e.ID
			case *eventstypes.TaskCreate:
				id = e.ContainerID
			default:
				continue
			}
			if _, err := fmt.Fprintf(f, "%s %s\n", env.Namespace, id); err != nil {
				return err
			}
		case err := <-errs:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-ctx.Done():
			return nil
		}
	}
}
