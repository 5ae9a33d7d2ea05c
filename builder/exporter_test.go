package builder

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestImageExporterAttrs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       map[string]string
		want     map[string]string
		wantOpts exportOptions
		wantErr  string
	}{
		{
			name:     "nil attrs: unpacked after the build",
			in:       nil,
			want:     map[string]string{},
			wantOpts: exportOptions{unpackAfter: true},
		},
		{
			name:     "short names are normalized, every one",
			in:       map[string]string{"name": "app:1, ghcr.io/o/app ,127.0.0.1:5000/x/y:z"},
			want:     map[string]string{"name": "docker.io/library/app:1,ghcr.io/o/app:latest,127.0.0.1:5000/x/y:z"},
			wantOpts: exportOptions{unpackAfter: true},
		},
		{
			name:     "digest names keep their digest and get no tag",
			in:       map[string]string{"name": "app@sha256:" + strings.Repeat("a", 64)},
			want:     map[string]string{"name": "docker.io/library/app@sha256:" + strings.Repeat("a", 64)},
			wantOpts: exportOptions{unpackAfter: true},
		},
		{
			name:     "star is the name from metadata",
			in:       map[string]string{"name": "*"},
			want:     map[string]string{"name": "*"},
			wantOpts: exportOptions{unpackAfter: true},
		},
		{
			name: "explicit unpack=false is kept",
			in:   map[string]string{"unpack": "false"},
			want: map[string]string{"unpack": "false"},
		},
		{
			name: "store=false is not unpacked",
			in:   map[string]string{"store": "false", "push": "true"},
			want: map[string]string{"store": "false", "push": "true"},
		},
		{
			name:     "keep is consumed",
			in:       map[string]string{"keep": "true", "name": "app"},
			want:     map[string]string{"name": "docker.io/library/app:latest"},
			wantOpts: exportOptions{keep: true, unpackAfter: true},
		},
		{
			name:     "empty keep means true, as BuildKit's booleans",
			in:       map[string]string{"keep": ""},
			want:     map[string]string{},
			wantOpts: exportOptions{keep: true, unpackAfter: true},
		},
		{
			name:     "keep=false",
			in:       map[string]string{"keep": "false"},
			want:     map[string]string{},
			wantOpts: exportOptions{unpackAfter: true},
		},
		{
			name: "explicit unpack=true is BuildKit's own unpack",
			in:   map[string]string{"unpack": "true", "name": "app"},
			want: map[string]string{"unpack": "true", "name": "docker.io/library/app:latest"},
		},
		{name: "bad keep", in: map[string]string{"keep": "yes please"}, wantErr: `keep="yes please"`},
		{name: "bad store", in: map[string]string{"store": "maybe"}, wantErr: `store="maybe"`},
		{name: "bad name", in: map[string]string{"name": "ok,Not_Valid/Name"}, wantErr: `image name "Not_Valid/Name"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := maps.Clone(tc.in)
			got, opts, err := imageExporterAttrs(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) || opts != tc.wantOpts {
				t.Errorf("got %v %+v, want %v %+v", got, opts, tc.want, tc.wantOpts)
			}
			if !maps.Equal(tc.in, orig) {
				t.Errorf("input attrs were modified: %v", tc.in)
			}
		})
	}
}

// fakeExporter records the attrs it resolves with.
type fakeExporter struct {
	attrs map[string]string
	inst  *fakeInstance
}

func (f *fakeExporter) Resolve(_ context.Context, id int, attrs map[string]string) (exporter.ExporterInstance, error) {
	f.attrs = attrs
	f.inst.attrs = attrs
	return f.inst, nil
}

// fakeInstance exports nothing and answers resp.
type fakeInstance struct {
	exporter.ExporterInstance
	attrs    map[string]string
	resp     map[string]string
	err      error
	released bool
}

func (f *fakeInstance) Attrs() map[string]string { return f.attrs }

func (f *fakeInstance) Export(context.Context, *exporter.Source, exporter.ExportBuildInfo) (map[string]string, exporter.FinalizeFunc, exporter.DescriptorReference, error) {
	if f.err != nil {
		return nil, nil, nil, f.err
	}
	return f.resp, nil, fakeRef{f}, nil
}

type fakeRef struct{ i *fakeInstance }

func (r fakeRef) Release() error               { r.i.released = true; return nil }
func (fakeRef) Descriptor() ocispec.Descriptor { return ocispec.Descriptor{} }

// fakeRecords records label updates and fails for names in fail.
type fakeRecords struct {
	updated []string
	fail    map[string]error
}

func (f *fakeRecords) Update(_ context.Context, img images.Image, fieldpaths ...string) (images.Image, error) {
	if err := f.fail[img.Name]; err != nil {
		return images.Image{}, err
	}
	if len(fieldpaths) != 1 || fieldpaths[0] != "labels."+PinnedLabel || img.Labels[PinnedLabel] != PinnedValue {
		return images.Image{}, errors.New("unexpected update")
	}
	f.updated = append(f.updated, img.Name)
	return img, nil
}

func TestNodeImageExporterKeep(t *testing.T) {
	names := "docker.io/library/a:1,docker.io/library/b:2"
	for _, tc := range []struct {
		name        string
		attrs       map[string]string
		exportErr   error
		fail        map[string]error
		wantPinned  []string
		wantErr     string
		wantRelease bool
	}{
		{name: "no keep pins nothing", attrs: map[string]string{"name": "a:1,b:2"}},
		{name: "keep pins every name", attrs: map[string]string{"name": "a:1,b:2", "keep": "true"},
			wantPinned: []string{"docker.io/library/a:1", "docker.io/library/b:2"}},
		{name: "keep without storing pins nothing", attrs: map[string]string{"name": "a:1,b:2", "keep": "true", "store": "false"}},
		{name: "export error is returned as is", attrs: map[string]string{"keep": "true"}, exportErr: errors.New("boom"), wantErr: "boom"},
		{name: "pin failure names the image and releases the export",
			attrs: map[string]string{"name": "a:1,b:2", "keep": "true"},
			fail:  map[string]error{"docker.io/library/b:2": errors.New("gone")}, wantPinned: []string{"docker.io/library/a:1"},
			wantErr: `pinning image "docker.io/library/b:2": gone`, wantRelease: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst := &fakeInstance{resp: map[string]string{exptypes.ExporterImageNameKey: names}, err: tc.exportErr}
			inner := &fakeExporter{inst: inst}
			records := &fakeRecords{fail: tc.fail}
			e := nodeImageExporter{inner: inner, records: records}
			got, err := e.Resolve(context.Background(), 0, tc.attrs)
			if err != nil {
				t.Fatal(err)
			}
			if _, has := inner.attrs[KeepAttr]; has {
				t.Errorf("inner exporter saw %s: %v", KeepAttr, inner.attrs)
			}
			_, _, _, err = got.Export(context.Background(), nil, exporter.ExportBuildInfo{})
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if strings.Join(records.updated, ",") != strings.Join(tc.wantPinned, ",") {
				t.Errorf("pinned %v, want %v", records.updated, tc.wantPinned)
			}
			if inst.released != tc.wantRelease {
				t.Errorf("released = %v, want %v", inst.released, tc.wantRelease)
			}
		})
	}
}

// fakeUnpacker records the names it is asked to unpack.
type fakeUnpacker struct{ names []string }

func (f *fakeUnpacker) unpackLater(name string) { f.names = append(f.names, name) }

func TestNodeImageExporterUnpacksAfterTheBuild(t *testing.T) {
	names := "docker.io/library/a:1,docker.io/library/b:2"
	for _, tc := range []struct {
		name       string
		attrs      map[string]string
		resp       map[string]string
		exportErr  error
		wantUnpack []string
	}{
		{name: "stored image, unpack unsaid: the first name once", attrs: map[string]string{"name": "a:1,b:2"},
			resp: map[string]string{exptypes.ExporterImageNameKey: names}, wantUnpack: []string{"docker.io/library/a:1"}},
		{name: "with keep too", attrs: map[string]string{"name": "a:1,b:2", "keep": "true"},
			resp: map[string]string{exptypes.ExporterImageNameKey: names}, wantUnpack: []string{"docker.io/library/a:1"}},
		{name: "unpack=true is BuildKit's, before the build returns", attrs: map[string]string{"name": "a:1", "unpack": "true"},
			resp: map[string]string{exptypes.ExporterImageNameKey: "docker.io/library/a:1"}},
		{name: "unpack=false is not unpacked", attrs: map[string]string{"name": "a:1", "unpack": "false"},
			resp: map[string]string{exptypes.ExporterImageNameKey: "docker.io/library/a:1"}},
		{name: "not stored", attrs: map[string]string{"name": "a:1", "store": "false", "push": "true"},
			resp: map[string]string{exptypes.ExporterImageNameKey: "docker.io/library/a:1"}},
		{name: "no name", attrs: map[string]string{}, resp: map[string]string{}},
		{name: "failed export", attrs: map[string]string{"name": "a:1"}, exportErr: errors.New("boom")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst := &fakeInstance{resp: tc.resp, err: tc.exportErr}
			inner := &fakeExporter{inst: inst}
			u := &fakeUnpacker{}
			e := nodeImageExporter{inner: inner, records: &fakeRecords{}, unpacker: u}
			got, err := e.Resolve(context.Background(), 0, tc.attrs)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, _, err = got.Export(context.Background(), nil, exporter.ExportBuildInfo{}); (err != nil) != (tc.exportErr != nil) {
				t.Fatalf("error = %v, want %v", err, tc.exportErr)
			}
			if strings.Join(u.names, ",") != strings.Join(tc.wantUnpack, ",") {
				t.Errorf("unpacked %v, want %v", u.names, tc.wantUnpack)
			}
			if v, set := inner.attrs["unpack"]; set != (tc.attrs["unpack"] != "") || v != tc.attrs["unpack"] {
				t.Errorf("inner exporter's unpack = %q (set %v), want the build's %q", v, set, tc.attrs["unpack"])
			}
		})
	}
}
