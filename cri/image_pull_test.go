package cri

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/slipway-dev/slipway/runtime/images"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestPullImageValidatesReference(t *testing.T) {
	s := NewServer(Options{Images: &fakeImages{}})
	for _, req := range []*runtimeapi.PullImageRequest{
		{},
		{Image: &runtimeapi.ImageSpec{}},
		{Image: &runtimeapi.ImageSpec{Image: "busybox:bad tag"}},
		{Image: &runtimeapi.ImageSpec{Image: "repo/Upper"}},
	} {
		_, err := s.PullImage(context.Background(), req)
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "image.image") {
			t.Errorf("PullImage(%v) = %v, want InvalidArgument naming image.image", req, err)
		}
	}
}

func TestPullImageReturnsImageID(t *testing.T) {
	fake := &fakeImages{byRef: map[string]images.Image{"busybox": {ID: "sha256:abc"}}}
	s := NewServer(Options{Images: fake})
	resp, err := s.PullImage(context.Background(), &runtimeapi.PullImageRequest{
		Image: &runtimeapi.ImageSpec{Image: "busybox"},
		Auth:  &runtimeapi.AuthConfig{Username: "u", Password: "p"},
	})
	if err != nil || resp.ImageRef != "sha256:abc" {
		t.Fatalf("PullImage = %v, %v; want sha256:abc", resp, err)
	}
	if user, secret, _ := fake.pulledCreds("registry-1.docker.io"); user != "u" || secret != "p" {
		t.Errorf("credentials = %q, %q; want u, p", user, secret)
	}
}

func TestCredentialsFor(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("alice:pw"))
	for _, tc := range []struct {
		name       string
		auth       *runtimeapi.AuthConfig
		host       string
		user, pass string
		wantErr    bool
	}{
		{name: "no auth", auth: nil, host: "r.io"},
		{name: "username", auth: &runtimeapi.AuthConfig{Username: "bob", Password: "pw"}, host: "r.io", user: "bob", pass: "pw"},
		{name: "identity token", auth: &runtimeapi.AuthConfig{IdentityToken: "tok"}, host: "r.io", pass: "tok"},
		{name: "base64 auth", auth: &runtimeapi.AuthConfig{Auth: basic}, host: "r.io", user: "alice", pass: "pw"},
		{name: "server matches host", auth: &runtimeapi.AuthConfig{Username: "bob", ServerAddress: "https://mirror:5000"}, host: "mirror:5000", user: "bob"},
		{name: "server matches image registry", auth: &runtimeapi.AuthConfig{Username: "bob", ServerAddress: "registry.k8s.io"}, host: "mirror:5000", user: "bob"},
		{name: "server matches neither", auth: &runtimeapi.AuthConfig{Username: "bob", ServerAddress: "other.io"}, host: "mirror:5000"},
		{name: "bad base64", auth: &runtimeapi.AuthConfig{Auth: "%%%"}, wantErr: true},
		{name: "base64 without colon", auth: &runtimeapi.AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte("alice"))}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			creds, err := credentialsFor(tc.auth, "registry.k8s.io")
			if tc.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if creds == nil {
				if tc.user != "" || tc.pass != "" {
					t.Fatal("no credentials function")
				}
				return
			}
			user, pass, _ := creds(tc.host)
			if user != tc.user || pass != tc.pass {
				t.Errorf("creds(%q) = %q, %q; want %q, %q", tc.host, user, pass, tc.user, tc.pass)
			}
		})
	}
}

func TestPullImagePassesErrorsThrough(t *testing.T) {
	s := NewServer(Options{Images: &fakeImages{err: errdefs.ErrUnauthenticated}})
	_, err := s.PullImage(context.Background(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}})
	if !errors.Is(err, errdefs.ErrUnauthenticated) {
		t.Errorf("err = %v, want unauthenticated", err)
	}
}
