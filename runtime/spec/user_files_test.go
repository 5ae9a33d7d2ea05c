package spec

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// countingRootFS is a RootFS over fsys that counts its uses.
func countingRootFS(fsys fs.FS, calls *int) RootFS {
	return func(_ context.Context, fn func(fs.FS) error) error {
		*calls++
		return fn(fsys)
	}
}

func readPasswd(t *testing.T, root RootFS) (string, error) {
	t.Helper()
	var out string
	err := root(context.Background(), func(fsys fs.FS) error {
		b, err := fs.ReadFile(fsys, "etc/passwd")
		out = string(b)
		return err
	})
	return out, err
}

func TestUserFilesKeepsAnImagesFiles(t *testing.T) {
	image := fstest.MapFS{
		"etc/passwd": {Data: []byte("root:x:0:0::/root:/bin/sh\n")},
		"etc/group":  {Data: []byte("root:x:0:\n")},
		"etc/other":  {Data: []byte("not kept")},
	}
	u := NewUserFiles()
	calls := 0
	for i := range 3 {
		got, err := readPasswd(t, u.RootFS("sha256:a", countingRootFS(image, &calls)))
		if err != nil || got != "root:x:0:0::/root:/bin/sh\n" {
			t.Fatalf("read %d: %q, %v", i, got, err)
		}
	}
	if calls != 1 {
		t.Errorf("the rootfs was read %d times, want once", calls)
	}
	// What is kept is only the user files.
	err := u.RootFS("sha256:a", nil)(context.Background(), func(fsys fs.FS) error {
		_, err := fs.Stat(fsys, "etc/other")
		return err
	})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("etc/other: %v, want ErrNotExist", err)
	}
	// Another image is read on its own; no image ID reads every time.
	other := fstest.MapFS{"etc/passwd": {Data: []byte("other\n")}}
	if got, _ := readPasswd(t, u.RootFS("sha256:b", countingRootFS(other, &calls))); got != "other\n" {
		t.Errorf("image b: %q", got)
	}
	if _, _ = readPasswd(t, u.RootFS("", countingRootFS(image, &calls))); calls != 3 {
		t.Errorf("%d reads, want 3", calls)
	}
	var nilFiles *UserFiles
	if _, _ = readPasswd(t, nilFiles.RootFS("sha256:a", countingRootFS(image, &calls))); calls != 4 {
		t.Errorf("a nil UserFiles kept files")
	}
}

func TestUserFilesAsTheImageHasThem(t *testing.T) {
	big := bytes.Repeat([]byte("u:x:1:1::/:/bin/sh\n"), maxCachedUserFile/10)
	for _, tc := range []struct {
		name    string
		image   fstest.MapFS
		want    string
		wantErr string
		kept    bool
	}{
		{name: "missing files are kept missing", image: fstest.MapFS{"bin/sh": {}}, wantErr: "file does not exist", kept: true},
		{name: "a directory is an error, not kept", image: fstest.MapFS{"etc/passwd/x": {}}, wantErr: "not a regular file"},
		{name: "a big file is read in place", image: fstest.MapFS{"etc/passwd": {Data: big}}, want: string(big)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := NewUserFiles()
			calls := 0
			for range 2 {
				got, err := readPasswd(t, u.RootFS("sha256:x", countingRootFS(tc.image, &calls)))
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("error %v, want %q", err, tc.wantErr)
					}
				} else if err != nil || got != tc.want {
					t.Fatalf("read %d bytes, %v", len(got), err)
				}
			}
			if want := map[bool]int{true: 1, false: 2}[tc.kept]; calls != want {
				t.Errorf("the rootfs was read %d times, want %d", calls, want)
			}
		})
	}
}
