package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path"
	"path/filepath"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/platforms"
	. "github.com/onsi/gomega"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// builtImage is an image as the builder stored it in containerd's k8s.io
// namespace: its record, manifest, config, each layer's uncompressed tar
// and the file system the layers make.
type builtImage struct {
	record   images.Image
	manifest ocispec.Manifest
	// rawConfig is the config blob; config is it parsed, with the docker
	// fields the OCI spec lacks.
	rawConfig []byte
	config    dockerImage
	layers    [][]byte
	files     map[string]imageFile
}

// dockerImage is an image config with the docker extensions BuildKit
// writes (Shell, Healthcheck, OnBuild).
type dockerImage struct {
	ocispec.Image
	Config dockerConfig `json:"config"`
}

type dockerConfig struct {
	ocispec.ImageConfig
	Shell       []string     `json:"Shell,omitempty"`
	OnBuild     []string     `json:"OnBuild,omitempty"`
	Healthcheck *healthcheck `json:"Healthcheck,omitempty"`
}

type healthcheck struct {
	Test        []string `json:"Test"`
	Interval    int64    `json:"Interval"`
	Timeout     int64    `json:"Timeout"`
	StartPeriod int64    `json:"StartPeriod"`
	Retries     int      `json:"Retries"`
}

// imageFile is one path in an image's file system.
type imageFile struct {
	typ  byte
	mode int64
	uid  int
	gid  int
	data string // regular files only
}

// ctrdClient connects to the suite's containerd in the CRI namespace.
func ctrdClient() *containerd.Client {
	c, err := containerd.New(filepath.Join(daemon.State, "containerd", "containerd.sock"),
		containerd.WithDefaultNamespace("k8s.io"))
	Expect(err).NotTo(HaveOccurred())
	return c
}

// inspectImage reads the image record called name and everything it
// points to for the node's platform.
func inspectImage(ctx context.Context, name string) *builtImage {
	c := ctrdClient()
	defer c.Close()
	rec, err := c.ImageService().Get(ctx, name)
	Expect(err).NotTo(HaveOccurred(), "image record %s", name)
	cs := c.ContentStore()
	img := &builtImage{record: rec, files: map[string]imageFile{}}
	img.manifest, err = images.Manifest(ctx, cs, rec.Target, platforms.Default())
	Expect(err).NotTo(HaveOccurred())
	img.rawConfig, err = content.ReadBlob(ctx, cs, img.manifest.Config)
	Expect(err).NotTo(HaveOccurred())
	Expect(json.Unmarshal(img.rawConfig, &img.config)).To(Succeed())
	for _, desc := range img.manifest.Layers {
		blob, err := content.ReadBlob(ctx, cs, desc)
		Expect(err).NotTo(HaveOccurred())
		r, err := compression.DecompressStream(bytes.NewReader(blob))
		Expect(err).NotTo(HaveOccurred())
		layer, err := io.ReadAll(r)
		r.Close()
		Expect(err).NotTo(HaveOccurred())
		img.layers = append(img.layers, layer)
		img.applyLayer(layer)
	}
	return img
}

// applyLayer adds a layer tar to img.files, honouring whiteouts.
func (img *builtImage) applyLayer(layer []byte) {
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		Expect(err).NotTo(HaveOccurred())
		p := "/" + strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		dir, base := path.Split(p)
		switch {
		case base == ".wh..wh..opq":
			for f := range img.files {
				if strings.HasPrefix(f, dir) && f != strings.TrimSuffix(dir, "/") {
					delete(img.files, f)
				}
			}
			continue
		case strings.HasPrefix(base, ".wh."):
			gone := path.Join(dir, strings.TrimPrefix(base, ".wh."))
			for f := range img.files {
				if f == gone || strings.HasPrefix(f, gone+"/") {
					delete(img.files, f)
				}
			}
			continue
		}
		f := imageFile{typ: h.Typeflag, mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			Expect(err).NotTo(HaveOccurred())
			f.data = string(b)
		}
		img.files[p] = f
	}
}

// file returns the regular file at p, failing the spec when it is missing.
func (img *builtImage) file(p string) imageFile {
	f, ok := img.files[p]
	Expect(ok).To(BeTrue(), "%s should be in image %s", p, img.record.Name)
	Expect(f.typ).To(Equal(byte(tar.TypeReg)), "%s should be a regular file", p)
	return f
}

// text is the content of the regular file at p, without surrounding space.
func (img *builtImage) text(p string) string {
	return strings.TrimSpace(img.file(p).data)
}

// has reports whether p exists in the image.
func (img *builtImage) has(p string) bool {
	_, ok := img.files[p]
	return ok
}

// contains reports whether s occurs anywhere in the image: any layer's
// uncompressed bytes, the config (with history) or the manifest.
func (img *builtImage) contains(s string) bool {
	if bytes.Contains(img.rawConfig, []byte(s)) {
		return true
	}
	manifest, err := json.Marshal(img.manifest)
	Expect(err).NotTo(HaveOccurred())
	if bytes.Contains(manifest, []byte(s)) {
		return true
	}
	for _, l := range img.layers {
		if bytes.Contains(l, []byte(s)) {
			return true
		}
	}
	return false
}
