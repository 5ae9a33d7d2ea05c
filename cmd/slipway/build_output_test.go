package main

import (
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/client"
)

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func TestExportEntries(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		o       buildOptions
		want    []client.ExportEntry // Output funcs are compared by presence
		wantErr string
	}{
		{name: "default is the node's image store under the tags",
			o:    buildOptions{tags: []string{"a:1", "b:2"}},
			want: []client.ExportEntry{{Type: "image", Attrs: map[string]string{"name": "a:1,b:2"}}}},
		{name: "untagged image", o: buildOptions{},
			want: []client.ExportEntry{{Type: "image", Attrs: map[string]string{}}}},
		{name: "keep pins the image", o: buildOptions{tags: []string{"a"}, keep: true},
			want: []client.ExportEntry{{Type: "image", Attrs: map[string]string{"name": "a", "keep": "true"}}}},
		{name: "push", o: buildOptions{tags: []string{"r/a"}, push: true},
			want: []client.ExportEntry{{Type: "image", Attrs: map[string]string{"name": "r/a", "push": "true"}}}},
		{name: "push needs a name", o: buildOptions{push: true}, wantErr: "pushing needs a name"},
		{name: "registry output with its own name",
			o:    buildOptions{tags: []string{"a"}, outputs: []string{"type=registry,name=r/b"}},
			want: []client.ExportEntry{{Type: "image", Attrs: map[string]string{"name": "r/b", "push": "true"}}}},
		{name: "local dir", o: buildOptions{outputs: []string{"type=local,dest=" + dir}},
			want: []client.ExportEntry{{Type: "local", Attrs: map[string]string{}, OutputDir: dir}}},
		{name: "bare path is a local dir", o: buildOptions{outputs: []string{dir}},
			want: []client.ExportEntry{{Type: "local", Attrs: map[string]string{}, OutputDir: dir}}},
		{name: "dash is a tar on stdout", o: buildOptions{outputs: []string{"-"}},
			want: []client.ExportEntry{{Type: "tar", Attrs: map[string]string{}, Output: fileOutput("-", nil)}}},
		{name: "oci file takes the tags as name", o: buildOptions{tags: []string{"a"}, outputs: []string{"type=oci,dest=" + dir + "/x.tar"}},
			want: []client.ExportEntry{{Type: "oci", Attrs: map[string]string{"name": "a"}, Output: fileOutput("", nil)}}},
		{name: "image and local together",
			o: buildOptions{tags: []string{"a"}, outputs: []string{"type=image", "type=local,dest=" + dir}},
			want: []client.ExportEntry{{Type: "image", Attrs: map[string]string{"name": "a"}},
				{Type: "local", Attrs: map[string]string{}, OutputDir: dir}}},
		{name: "two outputs to stdout", o: buildOptions{outputs: []string{"-", "type=oci,dest=-"}}, wantErr: "only one output may go to stdout"},
		{name: "keep without an image", o: buildOptions{keep: true, outputs: []string{dir}}, wantErr: "--keep needs an image output"},
		{name: "missing type", o: buildOptions{outputs: []string{"dest=x"}}, wantErr: "type is required"},
		{name: "unknown type", o: buildOptions{outputs: []string{"type=floppy"}}, wantErr: `unknown type "floppy"`},
		{name: "local without dest", o: buildOptions{outputs: []string{"type=local"}}, wantErr: "type=local needs dest=DIRECTORY"},
		{name: "tar without dest", o: buildOptions{outputs: []string{"type=tar"}}, wantErr: "type=tar needs dest=FILE"},
		{name: "image with dest", o: buildOptions{outputs: []string{"type=image,dest=x"}}, wantErr: "type=image takes no dest"},
		{name: "field without value", o: buildOptions{outputs: []string{"type=image,push"}}, wantErr: `"push" is not key=value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := exportEntries(tc.o, nopWriteCloser{io.Discard})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d entries, want %d: %+v", len(got), len(tc.want), got)
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.Type != w.Type || !maps.Equal(g.Attrs, w.Attrs) || g.OutputDir != w.OutputDir || (g.Output == nil) != (w.Output == nil) {
					t.Errorf("entry %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestFileOutput(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "sub", "image.tar")
	w, err := fileOutput(dest, nil)(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("tar")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if b, _ := os.ReadFile(dest); string(b) != "tar" {
		t.Errorf("dest holds %q", b)
	}
	var sb strings.Builder
	w, _ = fileOutput("-", nopWriteCloser{&sb})(nil)
	w.Write([]byte("to stdout"))
	if sb.String() != "to stdout" {
		t.Errorf("stdout got %q", sb.String())
	}
}

func TestCacheEntries(t *testing.T) {
	for _, tc := range []struct {
		name      string
		flag      string
		values    []string
		exporting bool
		want      []client.CacheOptionsEntry
		wantErr   string
	}{
		{name: "bare ref is registry", flag: "--cache-from", values: []string{"r/app:cache"},
			want: []client.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": "r/app:cache"}}}},
		{name: "registry with mode", flag: "--cache-to", exporting: true, values: []string{"type=registry,ref=r/c,mode=max"},
			want: []client.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": "r/c", "mode": "max"}}}},
		{name: "local import", flag: "--cache-from", values: []string{"type=local,src=/c"},
			want: []client.CacheOptionsEntry{{Type: "local", Attrs: map[string]string{"src": "/c"}}}},
		{name: "local export", flag: "--cache-to", exporting: true, values: []string{"type=local,dest=/c"},
			want: []client.CacheOptionsEntry{{Type: "local", Attrs: map[string]string{"dest": "/c"}}}},
		{name: "inline export", flag: "--cache-to", exporting: true, values: []string{"type=inline"},
			want: []client.CacheOptionsEntry{{Type: "inline", Attrs: map[string]string{}}}},
		{name: "inline import", flag: "--cache-from", values: []string{"type=inline"}, wantErr: "inline cache is imported with type=registry"},
		{name: "local import needs src", flag: "--cache-from", values: []string{"type=local,dest=/c"}, wantErr: "type=local needs src=DIRECTORY"},
		{name: "local export needs dest", flag: "--cache-to", exporting: true, values: []string{"type=local,src=/c"}, wantErr: "type=local needs dest=DIRECTORY"},
		{name: "registry needs ref", flag: "--cache-to", exporting: true, values: []string{"type=registry,mode=max"}, wantErr: "type=registry needs ref="},
		{name: "unknown type", flag: "--cache-from", values: []string{"type=gha"}, wantErr: `--cache-from "type=gha": unknown type "gha"`},
		{name: "missing type", flag: "--cache-to", exporting: true, values: []string{"ref=x,mode=max"}, wantErr: "type is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cacheEntries(tc.flag, tc.values, tc.exporting)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i].Type != tc.want[i].Type || !maps.Equal(got[i].Attrs, tc.want[i].Attrs) {
					t.Errorf("entry %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}
