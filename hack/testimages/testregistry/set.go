// Package testregistry builds the container images that critest
// (sigs.k8s.io/cri-tools v1.37.0) and slipway's e2e suites pull, and serves
// them from an in-memory registry on a loopback address, for machines that
// cannot reach the public registries.
//
// Images are linux/amd64 Docker schema2 images made from Debian's
// busybox-static (applets as hard links) and small Go programs under
// hack/testimages/progs, compiled when the set is built. Builds are
// reproducible: the same inputs give the same digests.
//
// The registry holds every image at its name's path without the registry
// host ("registry.k8s.io/pause:3.9" is served as "pause:3.9"), so one
// loopback registry can mirror several public ones; see WriteHostsDir.
package testregistry

import (
	"fmt"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Names of the images critest v1.37.0 uses that need more than a shell.
const (
	// DefaultImage is critest's default test container image.
	DefaultImage = "registry.k8s.io/e2e-test-images/busybox:1.29-2"
	// NginxImage serves HTTP on port 80 and writes /var/run/nginx.pid.
	NginxImage = "registry.k8s.io/e2e-test-images/nginx:1.14-2"
	// HttpdImage serves HTTP on port 80 and logs "httpd" to stderr.
	HttpdImage = "registry.k8s.io/e2e-test-images/httpd:2.4.39-4"
	// NoNewPrivsImage runs a setuid-root program printing its effective uid.
	NoNewPrivsImage = "registry.k8s.io/e2e-test-images/nonewprivs:1.3"
	// HostNetNginxImage serves HTTP on port 12003.
	HostNetNginxImage = criToolsRegistry + "hostnet-nginx-amd64:latest"
	// PauseImage is the pod sandbox image critest pulls; it is also served
	// as k8s.gcr.io/pause:3.9.
	PauseImage = "registry.k8s.io/pause:3.9"
	// ImageVolumeDataImage is a data-only image (no shell) for image
	// volumes: ImageVolumeDataFile holds ImageVolumeDataText.
	ImageVolumeDataImage = "registry.k8s.io/slipway-test/image-volume-data:1"
)

// The file of ImageVolumeDataImage and its content.
const (
	ImageVolumeDataFile = "/data/greeting.txt"
	ImageVolumeDataText = "hello from an image volume\n"
)

// PrivatePrefix starts the repositories that Options.Auth protects.
const PrivatePrefix = "private/"

// PrivateImage is a busybox image served only by the loopback registry (as
// ADDR/private/busybox:1.0), for testing authenticated pulls. It is distinct
// from every public image.
const PrivateImage = PrivatePrefix + "busybox:1.0"

const criToolsRegistry = "gcr.io/k8s-staging-cri-tools/"

// base is what an image is built on.
type base int

const (
	scratch       base = iota // nothing
	staticBusybox             // busybox-static, /etc files and helper programs
	glibcBusybox              // as staticBusybox, with BuildOptions.GlibcBusybox when set
)

// recipe describes one image and every name it is published under.
type recipe struct {
	names  []string
	base   base
	files  func(b *builder, l *tarLayer) // adds the image's own layer; nil for none
	shared []string                      // names of builder layers added before files
	config v1.Config
}

const pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// shell is the configuration of the busybox images: run sh as user.
func shell(user string) v1.Config {
	return v1.Config{Env: []string{pathEnv}, Cmd: []string{"sh"}, User: user}
}

// marker adds an empty file at /name, as cri-tools' image-test Dockerfile
// does to tell its test images apart.
func marker(name string) func(*builder, *tarLayer) {
	return func(_ *builder, l *tarLayer) { l.file("/"+name, 0o644, 0, 0, nil) }
}

// recipes is the image set. Every recipe is a distinct image (it carries its
// first name as a label), so removing one image from a runtime never removes
// another; only the names within one recipe share a digest.
var recipes = []recipe{
	{names: []string{DefaultImage}, base: glibcBusybox, config: shell("")},
	{names: []string{NginxImage}, base: staticBusybox, shared: []string{"nginx"}, files: nginxConf(80), config: nginxConfig("SIGTERM")},
	{names: []string{HostNetNginxImage}, base: staticBusybox, shared: []string{"nginx"}, files: nginxConf(12003), config: nginxConfig("SIGQUIT")},
	{names: []string{HttpdImage}, base: staticBusybox, files: httpdFiles, config: httpdConfig()},
	{names: []string{NoNewPrivsImage}, base: staticBusybox, files: nnpFiles, config: v1.Config{
		Env: []string{pathEnv}, Entrypoint: []string{"/usr/local/bin/nnp"}}},
	{names: []string{PauseImage, "k8s.gcr.io/pause:3.9"}, shared: []string{"pause"}, config: pauseConfig()},
	{names: []string{"registry.k8s.io/pause:3.10"}, shared: []string{"pause"}, config: pauseConfig()},
	{names: []string{"registry.k8s.io/pause:3.10.2"}, shared: []string{"pause"}, config: pauseConfig()},

	{names: []string{criToolsRegistry + "test-image-user-uid:latest"}, base: staticBusybox, config: shell("1002")},
	{names: []string{criToolsRegistry + "test-image-user-username:latest"}, base: staticBusybox, config: shell("www-data")},
	{names: []string{criToolsRegistry + "test-image-user-uid-group:latest"}, base: staticBusybox, config: shell("1003:1004")},
	{names: []string{criToolsRegistry + "test-image-user-username-group:latest"}, base: staticBusybox, config: shell("www-data:1004")},
	{names: []string{criToolsRegistry + "test-image-predefined-group:latest"}, base: staticBusybox, files: predefinedGroupFiles, config: shell("1000")},
	{names: []string{criToolsRegistry + "test-image-latest:latest"}, base: staticBusybox, files: marker("test-image-latest"), config: shell("")},
	{names: []string{criToolsRegistry + "test-image-tag:test"}, base: staticBusybox, files: marker("test"), config: shell("")},
	{names: []string{criToolsRegistry + "test-image-tag:all"}, base: staticBusybox, files: marker("all"), config: shell("")},
	{names: []string{criToolsRegistry + "test-image-1:latest"}, base: staticBusybox, files: marker("test-image-1"), config: shell("")},
	{names: []string{criToolsRegistry + "test-image-2:latest"}, base: staticBusybox, files: marker("test-image-2"), config: shell("")},
	{names: []string{criToolsRegistry + "test-image-3:latest"}, base: staticBusybox, files: marker("test-image-3"), config: shell("")},
	{names: []string{criToolsRegistry + "test-image-tags:1", criToolsRegistry + "test-image-tags:2", criToolsRegistry + "test-image-tags:3"},
		base: staticBusybox, files: marker("same-image"), config: shell("")},

	{names: []string{"public.ecr.aws/docker/library/busybox:1.35.0-glibc"}, base: glibcBusybox, config: shell("")},
	{names: []string{"public.ecr.aws/docker/library/busybox:1-glibc"}, base: glibcBusybox, config: shell("")},
	{names: []string{"public.ecr.aws/docker/library/busybox:1"}, base: staticBusybox, config: shell("")},
	{names: []string{"public.ecr.aws/docker/library/busybox:1-musl"}, base: staticBusybox, config: shell("")},
	{names: []string{"public.ecr.aws/docker/library/busybox:1-uclibc"}, base: staticBusybox, config: shell("")},
	{names: []string{"docker.io/library/busybox:latest"}, base: staticBusybox, config: shell("")},

	{names: []string{PrivateImage}, base: staticBusybox, config: shell("")},
	{names: []string{ImageVolumeDataImage}, base: scratch, files: imageVolumeData},
}

// imageVolumeData is ImageVolumeDataImage's only layer.
func imageVolumeData(_ *builder, l *tarLayer) {
	l.dir("/data", 0o755, 0, 0)
	l.file(ImageVolumeDataFile, 0o644, 0, 0, []byte(ImageVolumeDataText))
}

// Names returns every public image name of the set, sorted: the names
// critest v1.37.0 pulls (except test-image-digest, pinned to a digest no
// local build can have, and the Windows images) and a few more for slipway's
// own suites. PrivateImage is not among them.
func Names() []string {
	var out []string
	for _, r := range recipes {
		for _, n := range r.names {
			if n != PrivateImage {
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

// LoopbackPath returns the repository path and tag (or digest) under which
// the loopback registry serves ref: ref without its registry host, with
// Docker Hub's "library/" and a "latest" tag added as needed. For example
// "registry.k8s.io/pause:3.9" gives "pause:3.9" and "busybox" gives
// "library/busybox:latest".
func LoopbackPath(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	path := r.Context().RepositoryStr()
	switch r := r.(type) {
	case name.Tag:
		return path + ":" + r.TagStr(), nil
	case name.Digest:
		return path + "@" + r.DigestStr(), nil
	}
	return "", fmt.Errorf("unsupported reference %q", ref)
}
