package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImageID(t *testing.T) {
	for _, tc := range []struct {
		resp map[string]string
		want string
	}{
		{map[string]string{"containerimage.config.digest": "sha256:c", "containerimage.digest": "sha256:m"}, "sha256:c"},
		{map[string]string{"containerimage.digest": "sha256:m"}, "sha256:m"},
		{map[string]string{}, ""},
	} {
		if got := imageID(tc.resp); got != tc.want {
			t.Errorf("imageID(%v) = %q, want %q", tc.resp, got, tc.want)
		}
	}
}

func TestWriteMetadata(t *testing.T) {
	desc := base64.StdEncoding.EncodeToString([]byte(`{"mediaType":"m","digest":"sha256:d","size":3}`))
	path := filepath.Join(t.TempDir(), "meta.json")
	if err := writeMetadata(path, map[string]string{"containerimage.descriptor": desc, "image.name": "a"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	d, ok := got["containerimage.descriptor"].(map[string]any)
	if !ok || d["digest"] != "sha256:d" || got["image.name"] != "a" {
		t.Errorf("metadata %s", b)
	}
}

func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		wantCode   int
		wantStderr string
		wantStdout string
	}{
		{args: nil, wantCode: 2, wantStderr: "Usage: slipway COMMAND"},
		{args: []string{"frob"}, wantCode: 2, wantStderr: `unknown command "frob"`},
		{args: []string{"version"}, wantCode: 0, wantStdout: "slipway " + version},
		{args: []string{"build"}, wantCode: 2, wantStderr: "Usage: slipway build"},
		{args: []string{"build", "--help"}, wantCode: 0, wantStderr: "--build-arg"},
		{args: []string{"build", "/nonexistent-context"}, wantCode: 1, wantStderr: `slipway: build context "/nonexistent-context"`},
		{args: []string{"build", "--addr", "unix:///nonexistent/buildkit.sock", "--progress", "plain", t.TempDir()}, wantCode: 1},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(t.Context(), tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantStderr) || !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Errorf("code %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
			}
		})
	}
}
