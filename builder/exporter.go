package builder

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/worker"
)

// KeepAttr is slipway's image exporter attribute: "keep=true" labels every
// image record the build names with PinnedLabel, so slipway's CRI reports
// the image pinned and kubelet's image GC leaves it alone. A later build of
// the same name without keep replaces the record and so unpins it.
// `slipway build --keep` sets it; with buildctl it is
// `--output type=image,name=app:1,keep=true`.
const KeepAttr = "keep"

// PinnedLabel and PinnedValue mark a pinned image record, as containerd's
// CRI does (runtime/images reads the same label).
const (
	PinnedLabel = "io.cri-containerd.pinned"
	PinnedValue = "pinned"
)

// imageRecords is the part of containerd's image store the exporter wrapper
// updates.
type imageRecords interface {
	Update(ctx context.Context, image images.Image, fieldpaths ...string) (images.Image, error)
}

// nodeWorker is the containerd worker with slipway's image exporter
// defaults; everything else is the embedded worker's.
type nodeWorker struct {
	worker.Worker
	records imageRecords
}

// Exporter wraps the image exporter (see nodeImageExporter); other
// exporters are BuildKit's own.
func (w nodeWorker) Exporter(name string, sm *session.Manager) (exporter.Exporter, error) {
	e, err := w.Worker.Exporter(name, sm)
	if err != nil || name != "image" {
		return e, err
	}
	return nodeImageExporter{inner: e, records: w.records}, nil
}

// nodeImageExporter adapts BuildKit's image exporter to a node's image
// store: names are normalized ("app:1" is stored as
// "docker.io/library/app:1", the form the CRI lists), images stored in the
// image store are unpacked for the snapshotter unless the build says
// unpack=false, and KeepAttr pins the named records.
type nodeImageExporter struct {
	inner   exporter.Exporter
	records imageRecords
}

// Resolve rewrites attrs (see nodeImageExporter) and resolves the inner
// exporter. A name that is not a valid reference or a keep value that is
// not a boolean is an error naming it.
func (e nodeImageExporter) Resolve(ctx context.Context, id int, attrs map[string]string) (exporter.ExporterInstance, error) {
	attrs, keep, err := imageExporterAttrs(attrs)
	if err != nil {
		return nil, err
	}
	inst, err := e.inner.Resolve(ctx, id, attrs)
	if err != nil {
		return nil, err
	}
	if !keep {
		return inst, nil
	}
	return keepInstance{ExporterInstance: inst, records: e.records}, nil
}

// imageExporterAttrs returns a copy of attrs with names normalized, unpack
// defaulted and KeepAttr removed, and whether KeepAttr was true.
func imageExporterAttrs(attrs map[string]string) (map[string]string, bool, error) {
	out := maps.Clone(attrs)
	if out == nil {
		out = map[string]string{}
	}
	keep := false
	if v, ok := out[KeepAttr]; ok {
		delete(out, KeepAttr)
		b, err := parseBoolAttr(KeepAttr, v)
		if err != nil {
			return nil, false, err
		}
		keep = b
	}
	if names, ok := out[string(exptypes.OptKeyName)]; ok && names != "" {
		normalized, err := normalizeNames(names)
		if err != nil {
			return nil, false, err
		}
		out[string(exptypes.OptKeyName)] = normalized
	}
	if _, ok := out[string(exptypes.OptKeyUnpack)]; !ok {
		store := true
		if v, ok := out[string(exptypes.OptKeyStore)]; ok {
			b, err := parseBoolAttr(string(exptypes.OptKeyStore), v)
			if err != nil {
				return nil, false, err
			}
			store = b
		}
		if store {
			out[string(exptypes.OptKeyUnpack)] = "true"
		}
	}
	return out, keep, nil
}

// normalizeNames normalizes a comma-separated list of image names. "*"
// (the name from the build's metadata) is left alone.
func normalizeNames(names string) (string, error) {
	parts := strings.Split(names, ",")
	for i, name := range parts {
		name = strings.TrimSpace(name)
		if name == "*" {
			parts[i] = name
			continue
		}
		named, err := reference.ParseNormalizedNamed(name)
		if err != nil {
			return "", fmt.Errorf("image name %q: %w", name, err)
		}
		if _, digested := named.(reference.Digested); !digested {
			named = reference.TagNameOnly(named)
		}
		parts[i] = named.String()
	}
	return strings.Join(parts, ","), nil
}

// parseBoolAttr parses an exporter attribute the way BuildKit does: an
// empty value is true.
func parseBoolAttr(key, v string) (bool, error) {
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("exporter attribute %s=%q: want true or false", key, v)
	}
	return b, nil
}

// keepInstance pins the records its inner image exporter names.
type keepInstance struct {
	exporter.ExporterInstance
	records imageRecords
}

// Export runs the inner export, then labels each named record pinned.
func (k keepInstance) Export(ctx context.Context, src *exporter.Source, info exporter.ExportBuildInfo) (map[string]string, exporter.FinalizeFunc, exporter.DescriptorReference, error) {
	resp, finalize, ref, err := k.ExporterInstance.Export(ctx, src, info)
	if err != nil {
		return resp, finalize, ref, err
	}
	names := resp[exptypes.ExporterImageNameKey]
	if names == "" {
		return resp, finalize, ref, nil
	}
	if store, ok := k.Attrs()[string(exptypes.OptKeyStore)]; ok {
		if b, _ := parseBoolAttr(string(exptypes.OptKeyStore), store); !b {
			return resp, finalize, ref, nil
		}
	}
	for name := range strings.SplitSeq(names, ",") {
		rec := images.Image{Name: name, Labels: map[string]string{PinnedLabel: PinnedValue}}
		if _, err := k.records.Update(ctx, rec, "labels."+PinnedLabel); err != nil {
			if ref != nil {
				_ = ref.Release()
			}
			return nil, nil, nil, fmt.Errorf("pinning image %q: %w", name, err)
		}
	}
	return resp, finalize, ref, nil
}
