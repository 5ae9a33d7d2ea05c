package cri

import (
	"context"
	"encoding/json"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/slipway-dev/slipway/runtime/images"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func testImages() *fakeImages {
	img := images.Image{
		ID:              "sha256:1111",
		References:      []string{"docker.io/library/app:1", "docker.io/library/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
		ManifestDigests: map[string]string{"docker.io/library/app:1": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "docker.io/library/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
		Size:            42,
		Config:          ocispec.Image{Config: ocispec.ImageConfig{User: "1003:1004"}},
		Pinned:          true,
	}
	return &fakeImages{byRef: map[string]images.Image{"app:1": img, "sha256:1111": img}}
}

func TestImageStatus(t *testing.T) {
	s := NewServer(Options{Images: testImages()})
	resp, err := s.ImageStatus(context.Background(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "app:1"}, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	img := resp.Image
	if img.Id != "sha256:1111" || img.Size != 42 || !img.Pinned || img.Uid.GetValue() != 1003 || img.Username != "" {
		t.Errorf("image = %+v", img)
	}
	if len(img.RepoTags) != 1 || img.RepoTags[0] != "docker.io/library/app:1" {
		t.Errorf("RepoTags = %v", img.RepoTags)
	}
	if len(img.RepoDigests) != 1 || img.RepoDigests[0] != "docker.io/library/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
		t.Errorf("RepoDigests = %v", img.RepoDigests)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil || info["id"] != "sha256:1111" {
		t.Errorf("verbose info = %q (%v)", resp.Info["info"], err)
	}
}

func TestImageStatusOfAbsentImageIsEmpty(t *testing.T) {
	s := NewServer(Options{Images: testImages()})
	resp, err := s.ImageStatus(context.Background(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "nope:1"}})
	if err != nil || resp.Image != nil {
		t.Errorf("ImageStatus(absent) = %v, %v; want empty response", resp, err)
	}
}

func TestListImagesFilter(t *testing.T) {
	s := NewServer(Options{Images: testImages()})
	for filter, want := range map[string]int{"": 1, "app:1": 1, "nope:2": 0} {
		req := &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: filter}}}
		resp, err := s.ListImages(context.Background(), req)
		if err != nil || len(resp.Images) != want {
			t.Errorf("ListImages(%q) = %d images, %v; want %d", filter, len(resp.GetImages()), err, want)
		}
	}
}

func TestImageUser(t *testing.T) {
	for user, want := range map[string]struct {
		uid      int64
		hasUID   bool
		username string
	}{
		"":                  {},
		"0":                 {uid: 0, hasUID: true},
		"1002":              {uid: 1002, hasUID: true},
		"1003:1004":         {uid: 1003, hasUID: true},
		"www-data":          {username: "www-data"},
		"www-data:www-data": {username: "www-data"},
	} {
		uid, name := imageUser(user)
		if (uid != nil) != want.hasUID || (uid != nil && *uid != want.uid) || name != want.username {
			t.Errorf("imageUser(%q) = %v, %q; want %+v", user, uid, name, want)
		}
	}
}
