package e2e

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The soak's workers share one world: every pod and container any of them
// made and no call has removed yet. Any worker may act on any object, so
// calls on one object race; the world records which lifecycle calls have
// begun on each, so a worker can tell an error that such a race explains
// (NotFound once a removal began) from one nothing explains.

// soakImage is an image the soak pulls, runs and removes. Names of one
// image (tags of one digest) share a group: removing one removes all.
type soakImage struct {
	ref   string
	group *soakImageGroup
}

// soakImageGroup counts the RemoveImage calls begun and ended on its
// image.
type soakImageGroup struct{ begun, ended atomic.Int64 }

// removedSince reports whether a removal that had not ended when ended
// was read (ended is an earlier read of g.ended) has begun by now.
func (g *soakImageGroup) removedSince(ended int64) bool { return g.begun.Load() > ended }

// soakImages are the images of the test registry the soak uses: all run
// sh, and the two tags of test-image-tags are one image.
func soakImages() []soakImage {
	tags := &soakImageGroup{}
	return []soakImage{
		{ref: busyboxImage, group: &soakImageGroup{}},
		{ref: "gcr.io/k8s-staging-cri-tools/test-image-1:latest", group: &soakImageGroup{}},
		{ref: "gcr.io/k8s-staging-cri-tools/test-image-2:latest", group: &soakImageGroup{}},
		{ref: "gcr.io/k8s-staging-cri-tools/test-image-tags:1", group: tags},
		{ref: "gcr.io/k8s-staging-cri-tools/test-image-tags:2", group: tags},
	}
}

// soakPod is a pod of the world.
type soakPod struct {
	id     string
	config *runtimeapi.PodSandboxConfig
	// port is the pod's host port, 0 for none; worker is the worker that
	// owns the port.
	port   int32
	worker int

	mu sync.Mutex
	// stopping and removing are set before the first StopPodSandbox and
	// RemovePodSandbox call on the pod; containers counts the containers
	// created in it and names the next one. mu guards all three.
	stopping, removing bool
	containers         int
	// inflight counts the CreateContainer and StartContainer calls on the
	// pod. Add is called under mu only while the pod is neither stopping
	// nor removing, so a stop or removal can wait for the calls that race
	// it.
	inflight sync.WaitGroup
}

// halted reports whether a stop or removal of the pod has begun.
func (p *soakPod) halted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping || p.removing
}

// gone reports whether a removal of the pod has begun.
func (p *soakPod) gone() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.removing
}

// String describes the pod and the calls begun on it.
func (p *soakPod) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("pod %.12s stopping=%t removing=%t", p.id, p.stopping, p.removing)
}

// ctrState is how far the soak took a container.
type ctrState int

const (
	ctrCreated  ctrState = iota
	ctrStarting          // a StartContainer call is out
	ctrRunning           // StartContainer succeeded
	ctrFailed            // StartContainer failed
)

// soakContainer is a container of the world.
type soakContainer struct {
	id    string
	pod   *soakPod
	image soakImage

	mu sync.Mutex
	// state, stopping and removing are guarded by mu; stopping and
	// removing are set before the first StopContainer and RemoveContainer
	// call.
	state              ctrState
	stopping, removing bool
}

// String describes the container, its pod and the calls begun on them.
func (c *soakContainer) String() string {
	c.mu.Lock()
	s := fmt.Sprintf("container %.12s state=%d stopping=%t removing=%t image=%s", c.id, c.state, c.stopping, c.removing, c.image.ref)
	c.mu.Unlock()
	return s + " in " + c.pod.String()
}

// gone reports whether a removal of the container or its pod has begun.
func (c *soakContainer) gone() bool {
	c.mu.Lock()
	removing := c.removing
	c.mu.Unlock()
	return removing || c.pod.gone()
}

// halted reports whether a stop or removal of the container or its pod
// has begun.
func (c *soakContainer) halted() bool {
	c.mu.Lock()
	halted := c.stopping || c.removing
	c.mu.Unlock()
	return halted || c.pod.halted()
}

// soakWorld is the set of live objects; mu guards pods and containers.
type soakWorld struct {
	mu         sync.Mutex
	pods       []*soakPod
	containers []*soakContainer
}

func (w *soakWorld) addPod(p *soakPod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pods = append(w.pods, p)
}

func (w *soakWorld) addContainer(c *soakContainer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.containers = append(w.containers, c)
}

// dropPod takes p and its containers out of the world and reports whether
// p was in it (two removals may race; one drops).
func (w *soakWorld) dropPod(p *soakPod) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.Index(w.pods, p)
	if i < 0 {
		return false
	}
	w.pods = slices.Delete(w.pods, i, i+1)
	w.containers = slices.DeleteFunc(w.containers, func(c *soakContainer) bool { return c.pod == p })
	return true
}

func (w *soakWorld) dropContainer(c *soakContainer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.containers = slices.DeleteFunc(w.containers, func(x *soakContainer) bool { return x == c })
}

func (w *soakWorld) podCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pods)
}

// snapshot returns the IDs of the live pods and containers, sorted.
func (w *soakWorld) snapshot() (pods, containers []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.pods {
		pods = append(pods, p.id)
	}
	for _, c := range w.containers {
		containers = append(containers, c.id)
	}
	return soakIDs(pods), soakIDs(containers)
}

// pickPod returns a random live pod for which claim (called under the
// pod's mu) returns true, or nil.
func (w *soakWorld) pickPod(rng *rand.Rand, claim func(*soakPod) bool) *soakPod {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, i := range rng.Perm(len(w.pods)) {
		p := w.pods[i]
		p.mu.Lock()
		ok := claim(p)
		p.mu.Unlock()
		if ok {
			return p
		}
	}
	return nil
}

// pickContainer returns a random live container for which claim (called
// under the container's mu) returns true, or nil.
func (w *soakWorld) pickContainer(rng *rand.Rand, claim func(*soakContainer) bool) *soakContainer {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, i := range rng.Perm(len(w.containers)) {
		c := w.containers[i]
		c.mu.Lock()
		ok := claim(c)
		c.mu.Unlock()
		if ok {
			return c
		}
	}
	return nil
}
