package builder

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/moby/buildkit/cache/remotecache"
	inlineremotecache "github.com/moby/buildkit/cache/remotecache/inline"
	localremotecache "github.com/moby/buildkit/cache/remotecache/local"
	registryremotecache "github.com/moby/buildkit/cache/remotecache/registry"
	"github.com/moby/buildkit/control"
	"github.com/moby/buildkit/frontend"
	dockerfile "github.com/moby/buildkit/frontend/dockerfile/builder"
	"github.com/moby/buildkit/frontend/gateway"
	"github.com/moby/buildkit/frontend/gateway/forwarder"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/solver"
	"github.com/moby/buildkit/solver/bboltcachestorage"
	"github.com/moby/buildkit/util/db/boltutil"
	"github.com/moby/buildkit/worker"
	bolt "go.etcd.io/bbolt"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// newController assembles BuildKit's controller around one containerd
// worker: the built-in dockerfile.v0 and gateway.v0 frontends, the local
// cache database and build history under o.Root, and registry, local and
// inline remote cache. Client spans go to traces (see buildTracing);
// stopping is closed when the Builder shuts down.
// On error everything opened here is closed again.
func newController(ctx context.Context, o Options, traces sdktrace.SpanExporter, stopping <-chan struct{}) (_ *control.Controller, retErr error) {
	sessionManager, err := session.NewManager()
	if err != nil {
		return nil, fmt.Errorf("session manager: %w", err)
	}
	w, err := newWorker(ctx, o)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			_ = w.Close()
		}
	}()
	wc := &worker.Controller{}
	if err := wc.Add(w); err != nil {
		return nil, fmt.Errorf("adding worker: %w", err)
	}

	gatewayFrontend, err := gateway.NewGatewayFrontend(wc.Infos(), nil)
	if err != nil {
		return nil, fmt.Errorf("gateway frontend: %w", err)
	}
	frontends := map[string]frontend.Frontend{
		"dockerfile.v0": forwarder.NewGatewayForwarder(wc.Infos(), dockerfile.Build),
		"gateway.v0":    gatewayFrontend,
	}

	cacheStorage, err := bboltcachestorage.NewStore(filepath.Join(o.Root, "cache.db"))
	if err != nil {
		return nil, fmt.Errorf("opening build cache database: %w", err)
	}
	defer func() {
		if retErr != nil {
			_ = cacheStorage.Close()
		}
	}()
	historyDB, err := boltutil.SafeOpen(filepath.Join(o.Root, "history.db"), 0o600, &bolt.Options{
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
	})
	if err != nil {
		return nil, fmt.Errorf("opening build history database: %w", err)
	}
	defer func() {
		if retErr != nil {
			_ = historyDB.Close()
		}
	}()

	hosts := registryHosts(o.HostsDir)
	c, err := control.NewController(control.Opt{
		SessionManager:   sessionManager,
		WorkerController: wc,
		Frontends:        frontends,
		ResolveCacheExporterFuncs: map[string]remotecache.ResolveCacheExporterFunc{
			"registry": registryremotecache.ResolveCacheExporterFunc(sessionManager, hosts),
			"local":    localremotecache.ResolveCacheExporterFunc(sessionManager),
			"inline":   inlineremotecache.ResolveCacheExporterFunc(),
		},
		ResolveCacheImporterFuncs: map[string]remotecache.ResolveCacheImporterFunc{
			"registry": registryremotecache.ResolveCacheImporterFunc(sessionManager, w.ContentStore(), hosts),
			"local":    localremotecache.ResolveCacheImporterFunc(sessionManager),
		},
		CacheManager:   solver.NewCacheManager(ctx, "local", cacheStorage, worker.NewCacheResultStorage(wc)),
		Entitlements:   o.Entitlements,
		TraceCollector: traces,
		MeterProvider:  meterProvider(o.Metrics),
		HistoryDB:      historyDB,
		CacheStore:     cacheStorage,
		LeaseManager:   w.LeaseManager(),
		ContentStore:   w.ContentStore(),
		GarbageCollect: w.GarbageCollect,
		GracefulStop:   stopping,
	})
	if err != nil {
		return nil, fmt.Errorf("build controller: %w", err)
	}
	return c, nil
}
