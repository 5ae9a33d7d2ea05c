package testregistry

import (
	"archive/tar"
	"errors"
	"io"
	"testing"
)

func TestTarLayer(t *testing.T) {
	l := newTarLayer()
	l.file("/usr/local/bin/tool", 0o4755, 0, 0, []byte("x"))
	l.hardlink("/usr/bin/tool", "/usr/local/bin/tool")
	layer, err := l.layer()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layer.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %v", h.Name, h.ModTime)
		}
		got = append(got, h.Name)
		if h.Typeflag == tar.TypeLink && (h.Linkname != "usr/local/bin/tool" || h.Mode != 0o4755) {
			t.Errorf("link %s -> %s mode %o", h.Name, h.Linkname, h.Mode)
		}
	}
	want := []string{"usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/tool", "usr/bin/", "usr/bin/tool"}
	if len(got) != len(want) {
		t.Fatalf("entries %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("entry %d = %q, want %q", i, got[i], want[i])
		}
	}

	// Two builds of the same content give the same digest.
	d1, _ := layer.Digest()
	l2 := newTarLayer()
	l2.file("/usr/local/bin/tool", 0o4755, 0, 0, []byte("x"))
	l2.hardlink("/usr/bin/tool", "/usr/local/bin/tool")
	layer2, err := l2.layer()
	if err != nil {
		t.Fatal(err)
	}
	if d2, _ := layer2.Digest(); d1 != d2 {
		t.Errorf("digests differ: %s %s", d1, d2)
	}
}

func TestTarLayerErrors(t *testing.T) {
	tests := map[string]func(*tarLayer){
		"duplicate":      func(l *tarLayer) { l.file("/a", 0o644, 0, 0, nil); l.file("/a", 0o644, 0, 0, nil) },
		"missing target": func(l *tarLayer) { l.hardlink("/a", "/b") },
		"link to dir":    func(l *tarLayer) { l.dir("/d", 0o755, 0, 0); l.hardlink("/a", "/d") },
	}
	for name, add := range tests {
		l := newTarLayer()
		add(l)
		if _, err := l.layer(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
