package testregistry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// epoch is the modification time of every file and the creation time of
// every image, so that builds are reproducible and digests stable.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// tarLayer builds an image layer in memory. Entries are written in the order
// they are added, and missing parent directories are added first (0755,
// root-owned). Paths are absolute ("/bin/sh"). The first error sticks and is
// returned by layer; a tarLayer is not safe for concurrent use.
type tarLayer struct {
	buf  bytes.Buffer
	tw   *tar.Writer
	seen map[string]*tar.Header // seen holds every entry written, by path without leading "/"
	err  error
}

func newTarLayer() *tarLayer {
	l := &tarLayer{seen: map[string]*tar.Header{}}
	l.tw = tar.NewWriter(&l.buf)
	return l
}

// dir adds a directory; mode holds permission and sticky/setuid bits.
func (l *tarLayer) dir(p string, mode int64, uid, gid int) {
	l.write(&tar.Header{Typeflag: tar.TypeDir, Name: clean(p) + "/", Mode: mode, Uid: uid, Gid: gid}, nil)
}

// file adds a regular file with the given content.
func (l *tarLayer) file(p string, mode int64, uid, gid int, data []byte) {
	l.write(&tar.Header{Typeflag: tar.TypeReg, Name: clean(p), Mode: mode, Uid: uid, Gid: gid, Size: int64(len(data))}, data)
}

// hardlink adds p as a hard link to target, a regular file already in the
// layer. The entry repeats the target's mode and owner, as tar does: unpackers
// such as containerd's apply a link entry's mode to the shared inode.
func (l *tarLayer) hardlink(p, target string) {
	if l.err != nil {
		return
	}
	t := l.seen[clean(target)]
	if t == nil || t.Typeflag != tar.TypeReg {
		l.err = fmt.Errorf("hard link %s: target %s is not a regular file in the layer", p, target)
		return
	}
	l.write(&tar.Header{Typeflag: tar.TypeLink, Name: clean(p), Linkname: t.Name, Mode: t.Mode, Uid: t.Uid, Gid: t.Gid}, nil)
}

// has reports whether p was added.
func (l *tarLayer) has(p string) bool { return l.seen[clean(p)] != nil }

func (l *tarLayer) write(h *tar.Header, data []byte) {
	if l.err != nil {
		return
	}
	name := strings.TrimSuffix(h.Name, "/")
	if l.seen[name] != nil {
		l.err = fmt.Errorf("%s added twice", name)
		return
	}
	if parent := path.Dir(name); parent != "." && l.seen[parent] == nil {
		l.dir(parent, 0o755, 0, 0)
		if l.err != nil {
			return
		}
	}
	h.ModTime = epoch
	h.Format = tar.FormatPAX
	if l.err = l.tw.WriteHeader(h); l.err != nil {
		return
	}
	if _, l.err = l.tw.Write(data); l.err != nil {
		return
	}
	l.seen[name] = h
}

// layer closes the tar stream and returns it gzip-compressed as a Docker
// schema2 layer. The tarLayer must not be used afterwards.
func (l *tarLayer) layer() (v1.Layer, error) {
	if l.err != nil {
		return nil, l.err
	}
	if err := l.tw.Close(); err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(l.buf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	b := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

// clean returns p relative to the root, as tar entries name it.
func clean(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}
