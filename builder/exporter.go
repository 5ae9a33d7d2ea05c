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

// laterUnpacker unpacks a stored image for the node's snapshotter after
// the build that stored it has returned (see unpacks.go).
type laterUnpacker interface {
	unpackLater(name string)
}

// nodeWorker is the containerd worker with slipway's image exporter
// defaults; everything else is the embedded worker's.
type nodeWorker struct {
	worker.Worker
	records imageRecords
	unpacks *backgroundUnpacks
}

// Exporter wraps the image exporter (see nodeImageExporter); other
// exporters are BuildKit's own.
func (w nodeWorker) Exporter(name string, sm *session.Manager) (exporter.Exporter, error) {
	e, err := w.Worker.Exporter(name, sm)
	if err != nil || name != "image" {
		return e, err
	}
	return nodeImageExporter{inner: e, records: w.records, unpacker: w.unpacks}, nil
}

// Close waits for (or cancels) the unpacks still going, then closes the
// worker.
func (w nodeWorker) Close() error {
	w.unpacks.close()
	return w.Worker.Close()
}

// nodeImageExporter adapts BuildKit's image exporter to a node's image
// store: names are normalized ("app:1" is stored as
// "docker.io/library/app:1", the form the CRI lists), images stored in the
// image store are unpacked for the snapshotter, and KeepAttr pins the
// named records.
//
// Unpacking: a build that says unpack=true gets BuildKit's own unpack,
// done before the build returns. A build that says nothing about unpack
// (slipway build -t, buildctl --output type=image) returns as soon as the
// image is stored, and unpacker unpacks it right after; a pod created
// before that finishes unpacks the image itself (runtime/container), so the
// image is usable the moment the build returns. unpack=false is not
// unpacked here at all.
type nodeImageExporter struct {
	inner    exporter.Exporter
	records  imageRecords
	unpacker laterUnpacker
}

// Resolve rewrites attrs (see nodeImageExporter) and resolves the inner
// exporter. A name that is not a valid reference or a keep value that is
// not a boolean is an error naming it.
func (e nodeImageExporter) Resolve(ctx context.Context, id int, attrs map[string]string) (exporter.ExporterInstance, error) {
	attrs, o, err := imageExporterAttrs(attrs)
	if err != nil {
		return nil, err
	}
	inst, err := e.inner.Resolve(ctx, id, attrs)
	if err != nil {
		return nil, err
	}
	if !o.keep && !o.unpackAfter {
		return inst, nil
	}
	n := nodeImageInstance{ExporterInstance: inst, records: e.records}
	if o.keep {
		n.pin = true
	}
	if o.unpackAfter {
		n.unpacker = e.unpacker
	}
	return n, nil
}

// exportOptions are slipway's own image exporter options.
type exportOptions struct {
	// keep is KeepAttr: pin the named records.
	keep bool
	// unpackAfter: the image is stored and the build did not say whether
	// to unpack it, so it is unpacked after the build returns.
	unpackAfter bool
}

// imageExporterAttrs returns a copy of attrs with names normalized and
// KeepAttr removed, and slipway's options from them.
func imageExporterAttrs(attrs map[string]string) (map[string]string, exportOptions, error) {
	out := maps.Clone(attrs)
	if out == nil {
		out = map[string]string{}
	}
	var o exportOptions
	if v, ok := out[KeepAttr]; ok {
		delete(out, KeepAttr)
		b, err := parseBoolAttr(KeepAttr, v)
		if err != nil {
			return nil, exportOptions{}, err
		}
		o.keep = b
	}
	if names, ok := out[string(exptypes.OptKeyName)]; ok && names != "" {
		normalized, err := normalizeNames(names)
		if err != nil {
			return nil, exportOptions{}, err
		}
		out[string(exptypes.OptKeyName)] = normalized
	}
	if _, ok := out[string(exptypes.OptKeyUnpack)]; !ok {
		store := true
		if v, ok := out[string(exptypes.OptKeyStore)]; ok {
			b, err := parseBoolAttr(string(exptypes.OptKeyStore), v)
			if err != nil {
				return nil, exportOptions{}, err
			}
			store = b
		}
		o.unpackAfter = store
	}
	return out, o, nil
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

// nodeImageInstance pins the records its inner image exporter names (pin)
// and has them unpacked after the build (a non-nil unpacker).
type nodeImageInstance struct {
	exporter.ExporterInstance
	records  imageRecords
	pin      bool
	unpacker laterUnpacker
}

// Export runs the inner export, then labels each named record pinned and
// starts the unpack of the stored image.
func (k nodeImageInstance) Export(ctx context.Context, src *exporter.Source, info exporter.ExportBuildInfo) (map[string]string, exporter.FinalizeFunc, exporter.DescriptorReference, error) {
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
	if k.unpacker != nil {
		// Every name has the same target: one unpack serves them all.
		first, _, _ := strings.Cut(names, ",")
		k.unpacker.unpackLater(first)
	}
	if !k.pin {
		return resp, finalize, ref, nil
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
