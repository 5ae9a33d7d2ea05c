package images

// Against a real containerd 2.4.2 (started in a temp dir through
// runtime/embedded) and the loopback test registry: workers pull and remove
// the same images concurrently, as critest's image lifecycle benchmark does.
// The test owns containerd's root and state, its namespace and the registry,
// and stops them all.

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	registry "github.com/slipway-dev/slipway/hack/testimages/testregistry"
	"github.com/slipway-dev/slipway/runtime/embedded"
)

const (
	raceContainerd = "/usr/local/bin/containerd"
	raceNamespace  = "slipway-images-race"
	raceWorkers    = 4
	raceIterations = 30
)

// raceImages are the names the registry serves: a:1 and a:2 are one image;
// a and b share their base layer, so removing one while pulling the other
// races on shared content and snapshots too.
var raceImages = []string{
	"registry.k8s.io/slipway-race/a:1",
	"registry.k8s.io/slipway-race/a:2",
	"registry.k8s.io/slipway-race/b:1",
}

func requireRealContainerd(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath(raceContainerd); err != nil {
		t.Skipf("%s not found", raceContainerd)
	}
}

// TestPullRemoveRace runs raceWorkers workers that each, raceIterations
// times, pull one of raceImages or remove one by tag or by ID. Every call
// must succeed, and afterwards the index must equal containerd's records.
// After a final removal of everything, no lease, blob or snapshot is left.
func TestPullRemoveRace(t *testing.T) {
	requireRealContainerd(t)
	svc, client := startRaceService(t)
	ctx := namespaces.WithNamespace(context.Background(), raceNamespace)

	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []string
		counts = map[string]int{}
	)
	for w := range raceWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(seed + int64(w)))
			for range raceIterations {
				ref := raceImages[rnd.Intn(len(raceImages))]
				op, err := raceOp(ctx, svc, rnd.Intn(3), ref)
				mu.Lock()
				counts[op]++
				if err != nil {
					errs = append(errs, fmt.Sprintf("%s %s: %v", op, ref, err))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("operations: %v", counts)
	for _, e := range errs {
		t.Error(e)
	}
	checkIndexMatchesContainerd(t, ctx, svc)

	for _, ref := range raceImages {
		if err := svc.Remove(ctx, ref); err != nil {
			t.Errorf("final remove %s: %v", ref, err)
		}
	}
	checkIndexMatchesContainerd(t, ctx, svc)
	// Removal collects in the background; Usage waits for it, so it
	// counts no layer of the removed images.
	if u, err := svc.Usage(ctx); err != nil {
		t.Errorf("usage: %v", err)
	} else if u.Bytes != 0 || u.Inodes != 0 {
		t.Errorf("usage after removing every image: %d bytes, %d inodes; want none", u.Bytes, u.Inodes)
	}
	checkNothingLeft(t, ctx, svc, client)
}

// raceOp runs operation n on ref: 0 pulls, 1 removes by tag, 2 removes by
// image ID when the image is indexed. It returns the operation's name.
func raceOp(ctx context.Context, svc *Service, n int, ref string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	switch n {
	case 0:
		img, err := svc.Pull(ctx, ref, nil)
		if err == nil && !contains(img.References, ref) {
			err = fmt.Errorf("pulled image %s lacks its reference: %v", img.ID, img.References)
		}
		return "pull", err
	case 1:
		return "remove-tag", svc.Remove(ctx, ref)
	default:
		img, err := svc.Get(ref)
		if err != nil {
			return "remove-id-absent", nil
		}
		return "remove-id", svc.Remove(ctx, img.ID)
	}
}

// checkIndexMatchesContainerd compares every reference the index serves
// with the image ID containerd's record of that name resolves to.
func checkIndexMatchesContainerd(t *testing.T, ctx context.Context, svc *Service) {
	t.Helper()
	// Let the watcher apply the events of the last operations.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, want := indexedRefs(svc), containerdRefs(t, ctx, svc)
		if got == want {
			t.Logf("index matches containerd: %s", got)
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("index does not match containerd\n index: %s\nrecords: %s", got, want)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func indexedRefs(svc *Service) string {
	var out []string
	for _, img := range svc.List() {
		for _, r := range img.References {
			out = append(out, r+"="+img.ID)
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func containerdRefs(t *testing.T, ctx context.Context, svc *Service) string {
	t.Helper()
	recs, err := svc.opts.Client.ImageService().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rec := range recs {
		id, _, err := svc.index.resolve(ctx, rec)
		if err != nil {
			id = "unresolvable(" + err.Error() + ")"
		}
		out = append(out, rec.Name+"="+id)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// checkNothingLeft waits for svc's background collections, collects
// garbage and asserts that the namespace holds no lease, blob or snapshot.
func checkNothingLeft(t *testing.T, ctx context.Context, svc *Service, client *containerd.Client) {
	t.Helper()
	if err := svc.collector.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	ls := client.LeasesService()
	list, err := ls.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		t.Errorf("lease left: %s %v", l.ID, l.Labels)
	}
	// Deleting a lease synchronously runs containerd's garbage collector.
	l, err := ls.Create(ctx, leases.WithRandomID())
	if err != nil {
		t.Fatal(err)
	}
	if err := ls.Delete(ctx, l, leases.SynchronousDelete); err != nil {
		t.Fatal(err)
	}
	err = client.ContentStore().Walk(ctx, func(info content.Info) error {
		t.Errorf("blob left: %s %v", info.Digest, info.Labels)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = client.SnapshotService("overlayfs").Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		t.Errorf("snapshot left: %s", info.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// startRaceService starts the registry and containerd, and a Service with
// its watcher on them; cleanups stop all three.
func startRaceService(t *testing.T) (*Service, *containerd.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg, err := registry.Start(ctx, registry.Options{Images: raceRegistryImages(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	dir := t.TempDir()
	hosts := filepath.Join(dir, "certs.d")
	if err := registry.WriteHostsDir(hosts, reg.Addr()); err != nil {
		t.Fatal(err)
	}
	client := startTestContainerd(t, dir)
	svc, err := NewService(namespaces.WithNamespace(ctx, raceNamespace), Options{Client: client, HostsDir: hosts})
	if err != nil {
		t.Fatal(err)
	}
	watchCtx, stopWatch := context.WithCancel(namespaces.WithNamespace(context.Background(), raceNamespace))
	done := make(chan struct{})
	go func() { svc.Watch(watchCtx, raceNamespace); close(done) }()
	t.Cleanup(func() { stopWatch(); <-done })
	return svc, client
}

// startTestContainerd starts containerd with its root and state under dir
// and returns a client for raceNamespace; cleanups stop both.
func startTestContainerd(t *testing.T, dir string) *containerd.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := embedded.Config{Binary: raceContainerd, Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state")}
	d, err := embedded.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	t.Cleanup(d.Stop)
	client, err := containerd.New(d.Address(), containerd.WithDefaultNamespace(raceNamespace))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// TestNewServiceDeletesStalePullLeases: the leases of a pull and of a
// collection that slipwayd died in are deleted at start; other clients'
// leases are left alone.
func TestNewServiceDeletesStalePullLeases(t *testing.T) {
	requireRealContainerd(t)
	client := startTestContainerd(t, t.TempDir())
	ctx := namespaces.WithNamespace(context.Background(), raceNamespace)
	ls := client.LeasesService()
	if _, err := ls.Create(ctx, leases.WithID("crashed-pull"), leases.WithLabel(pullLeaseLabel, "true")); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.Create(ctx, leases.WithID("crashed-collection"), leases.WithLabel(collectLeaseLabel, "true")); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.Create(ctx, leases.WithID("someone-else")); err != nil {
		t.Fatal(err)
	}
	if _, err := NewService(ctx, Options{Client: client}); err != nil {
		t.Fatal(err)
	}
	list, err := ls.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range list {
		ids = append(ids, l.ID)
	}
	if !equal(ids, []string{"someone-else"}) {
		t.Errorf("leases after NewService: %v, want [someone-else]", ids)
	}
}

// raceRegistryImages builds the images of raceImages: a base layer shared
// by both, and one layer of each image's own.
func raceRegistryImages(t *testing.T) map[string]v1.Image {
	t.Helper()
	layer := func() v1.Layer {
		l, err := random.Layer(256<<10, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	base := layer()
	image := func() v1.Image {
		img, err := mutate.AppendLayers(empty.Image, base, layer())
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cfg = cfg.DeepCopy()
		cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
		if img, err = mutate.ConfigFile(img, cfg); err != nil {
			t.Fatal(err)
		}
		return img
	}
	a, b := image(), image()
	return map[string]v1.Image{raceImages[0]: a, raceImages[1]: a, raceImages[2]: b}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
