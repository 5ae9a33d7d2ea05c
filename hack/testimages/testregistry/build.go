package testregistry

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// LabelName is the image config label holding the first name of each image;
// it keeps images that would otherwise be identical distinct.
const LabelName = "io.slipway.testimage.name"

// BuildOptions selects the host files the images are made from.
type BuildOptions struct {
	// Busybox is a statically linked busybox binary; "" means /bin/busybox
	// (Debian's busybox-static). Its shell runs applets in-process.
	Busybox string

	// GlibcBusybox is an optional busybox binary whose shell looks commands
	// up in PATH and execs them, such as Debian's (dynamically linked)
	// busybox package, see FetchDebianBusybox. When set, DefaultImage and the
	// public.ecr.aws busybox *-glibc images are made from it, with the ELF
	// interpreter and libraries it needs copied from the host; then critest's
	// MaskedPaths spec (which masks /bin/ls and expects `sh -c ls` to fail
	// with "/bin/sh: ls: Permission denied") can pass. "" means those images
	// use Busybox too.
	GlibcBusybox string
}

// Build builds every image of the set and returns it under each of its
// names: every name of Names, and PrivateImage. Names of one image map to
// the same v1.Image. Build compiles the helper programs with the go command
// found in PATH, so it must run where the slipway module's source is (any
// directory of a checkout, or a binary built from one).
func Build(ctx context.Context, opts BuildOptions) (map[string]v1.Image, error) {
	if opts.Busybox == "" {
		opts.Busybox = "/bin/busybox"
	}
	if err := checkPaths(); err != nil {
		return nil, err
	}
	b, err := newBuilder(ctx, opts)
	if err != nil {
		return nil, err
	}
	out := map[string]v1.Image{}
	for _, r := range recipes {
		img, err := b.image(r)
		if err != nil {
			return nil, fmt.Errorf("building %s: %w", r.names[0], err)
		}
		for _, n := range r.names {
			out[n] = img
		}
	}
	return out, nil
}

// checkPaths reports names of different recipes that the loopback registry
// would serve at the same path.
func checkPaths() error {
	owner := map[string]string{}
	for _, r := range recipes {
		for _, n := range r.names {
			p, err := LoopbackPath(n)
			if err != nil {
				return err
			}
			if o, ok := owner[p]; ok && o != r.names[0] {
				return fmt.Errorf("%s and %s would both be served as %s", o, n, p)
			}
			owner[p] = r.names[0]
		}
	}
	return nil
}

// builder holds the layers that several images share, so each is built (and
// compressed) once.
type builder struct {
	bases  map[base][]v1.Layer // the layers of each base; none for scratch
	shared map[string]v1.Layer // layers recipes name in recipe.shared
	progs  map[string][]byte   // helper programs by name
}

func newBuilder(ctx context.Context, opts BuildOptions) (*builder, error) {
	progs, err := buildPrograms(ctx)
	if err != nil {
		return nil, err
	}
	b := &builder{progs: progs, bases: map[base][]v1.Layer{}, shared: map[string]v1.Layer{}}

	helpers, err := b.helpersLayer()
	if err != nil {
		return nil, err
	}
	static, err := busyboxLayer(opts.Busybox)
	if err != nil {
		return nil, err
	}
	b.bases[staticBusybox] = []v1.Layer{static, helpers}
	b.bases[glibcBusybox] = b.bases[staticBusybox]
	if opts.GlibcBusybox != "" {
		execs, err := ShellExecsFromPath(ctx, opts.GlibcBusybox)
		if err != nil {
			return nil, err
		}
		if !execs {
			return nil, fmt.Errorf("GlibcBusybox %s: its shell runs applets in-process instead of from PATH", opts.GlibcBusybox)
		}
		glibc, err := busyboxLayer(opts.GlibcBusybox)
		if err != nil {
			return nil, err
		}
		b.bases[glibcBusybox] = []v1.Layer{glibc, helpers}
	}

	for name, files := range map[string]func(*tarLayer){
		"pause": func(l *tarLayer) { l.file("/pause", 0o755, 0, 0, b.progs["pause"]) },
		"nginx": func(l *tarLayer) { l.file("/usr/sbin/nginx", 0o755, 0, 0, b.progs["webserver"]) },
	} {
		l := newTarLayer()
		files(l)
		if b.shared[name], err = l.layer(); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// image assembles r.
func (b *builder) image(r recipe) (v1.Image, error) {
	layers := append([]v1.Layer(nil), b.bases[r.base]...)
	for _, s := range r.shared {
		layers = append(layers, b.shared[s])
	}
	if r.files != nil {
		l := newTarLayer()
		r.files(b, l)
		own, err := l.layer()
		if err != nil {
			return nil, err
		}
		layers = append(layers, own)
	}

	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		adds[i] = mutate.Addendum{Layer: l, History: v1.History{
			Created:   v1.Time{Time: epoch},
			CreatedBy: "slipway hack/testimages",
		}}
	}
	img, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = "amd64"
	cf.OS = "linux"
	cf.Created = v1.Time{Time: epoch}
	cf.Config = *r.config.DeepCopy()
	if cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	cf.Config.Labels[LabelName] = r.names[0]
	return mutate.ConfigFile(img, cf)
}
