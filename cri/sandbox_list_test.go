package cri

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/slipway-dev/slipway/runtime/pod"
)

// listPods calls ListPodSandbox and decodes its answer, as a client does:
// the response carries the pods encoded (listEncodings).
func listPods(t *testing.T, s *Server, f *runtimeapi.PodSandboxFilter) []*runtimeapi.PodSandbox {
	t.Helper()
	resp, err := s.ListPodSandbox(context.Background(), &runtimeapi.ListPodSandboxRequest{Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var back runtimeapi.ListPodSandboxResponse
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return back.Items
}

// TestListPodSandbox: pods are listed oldest first with their record's
// fields, filters select, and a change (a pod stopped, one removed, one
// added) shows in the very next list, filtered or not.
func TestListPodSandbox(t *testing.T) {
	pods := pod.NewStore(nil)
	now := time.Now()
	for i := range 5 {
		id := fmt.Sprintf("pod%d", i)
		pods.Put(id, pod.Sandbox{ID: id, CreatedAt: now.Add(time.Duration(i)), State: runtimeapi.PodSandboxState_SANDBOX_READY,
			RuntimeHandler: "runc",
			Config: &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: id, Namespace: "ns"},
				Labels: map[string]string{"n": fmt.Sprint(i % 2)}, Annotations: map[string]string{"a": id}}})
	}
	s := &Server{opts: Options{Pods: pods}}
	ids := func(items []*runtimeapi.PodSandbox) string {
		var out string
		for _, p := range items {
			out += p.Id + " "
		}
		return out
	}
	all := listPods(t, s, nil)
	if got := ids(all); got != "pod0 pod1 pod2 pod3 pod4 " {
		t.Fatalf("listed %q, want pod0..pod4 oldest first", got)
	}
	if p := all[3]; p.Metadata.GetName() != "pod3" || p.Labels["n"] != "1" || p.Annotations["a"] != "pod3" ||
		p.RuntimeHandler != "runc" || p.CreatedAt != now.Add(3).UnixNano() || p.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("pod3 listed as %v", p)
	}
	if got := ids(listPods(t, s, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"n": "1"}})); got != "pod1 pod3 " {
		t.Errorf("label n=1 lists %q", got)
	}

	stopped, err := pods.Get("pod2")
	if err != nil {
		t.Fatal(err)
	}
	stopped.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	pods.Put("pod2", stopped)
	pods.Index.Delete("pod4")
	pods.Put("pod5", pod.Sandbox{ID: "pod5", CreatedAt: now.Add(5), State: runtimeapi.PodSandboxState_SANDBOX_READY,
		Config: &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "pod5"}}})
	if got := ids(listPods(t, s, nil)); got != "pod0 pod1 pod2 pod3 pod5 " {
		t.Errorf("after the changes the list is %q", got)
	}
	notReady := &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}
	if got := ids(listPods(t, s, &runtimeapi.PodSandboxFilter{State: notReady})); got != "pod2 " {
		t.Errorf("not ready pods: %q, want pod2", got)
	}
	if got := ids(listPods(t, s, &runtimeapi.PodSandboxFilter{Id: "pod"})); got != "pod0 pod1 pod2 pod3 pod5 " {
		t.Errorf("ID prefix pod lists %q", got)
	}
	if got := listPods(t, s, &runtimeapi.PodSandboxFilter{Id: "none"}); len(got) != 0 {
		t.Errorf("an unknown ID lists %v", got)
	}
}
