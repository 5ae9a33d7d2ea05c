package testregistry

import (
	"slices"
	"testing"
)

func TestLoopbackPath(t *testing.T) {
	tests := []struct{ ref, want string }{
		{"registry.k8s.io/pause:3.9", "pause:3.9"},
		{"k8s.gcr.io/pause:3.9", "pause:3.9"},
		{"registry.k8s.io/e2e-test-images/busybox:1.29-2", "e2e-test-images/busybox:1.29-2"},
		{"gcr.io/k8s-staging-cri-tools/test-image-latest", "k8s-staging-cri-tools/test-image-latest:latest"},
		{"busybox", "library/busybox:latest"},
		{"docker.io/library/busybox:1.36", "library/busybox:1.36"},
		{"public.ecr.aws/docker/library/busybox:1-glibc", "docker/library/busybox:1-glibc"},
		{PrivateImage, "private/busybox:1.0"},
		{"127.0.0.1:5000/private/busybox:1.0", "private/busybox:1.0"},
		{"gcr.io/x/y@sha256:9700f9a2f5bf2c45f2f605a0bd3bce7cf37420ec9d3ed50ac2758413308766bf",
			"x/y@sha256:9700f9a2f5bf2c45f2f605a0bd3bce7cf37420ec9d3ed50ac2758413308766bf"},
	}
	for _, tt := range tests {
		got, err := LoopbackPath(tt.ref)
		if err != nil || got != tt.want {
			t.Errorf("LoopbackPath(%q) = %q, %v; want %q", tt.ref, got, err, tt.want)
		}
	}
	if _, err := LoopbackPath("Not A Reference"); err == nil {
		t.Error("LoopbackPath accepted an invalid reference")
	}
}

func TestRecipesDoNotShareLoopbackPaths(t *testing.T) {
	if err := checkPaths(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range recipes {
		for _, n := range r.names {
			if seen[n] {
				t.Errorf("%s is in two recipes", n)
			}
			seen[n] = true
		}
	}
}

// TestNamesCoverCritest checks that every Linux image critest v1.37.0 pulls
// (pkg/validate and pkg/benchmark), except the digest-pinned one, is in the set.
func TestNamesCoverCritest(t *testing.T) {
	const r = "gcr.io/k8s-staging-cri-tools/"
	critest := []string{
		"registry.k8s.io/e2e-test-images/busybox:1.29-2",
		"registry.k8s.io/e2e-test-images/nginx:1.14-2",
		"registry.k8s.io/e2e-test-images/httpd:2.4.39-4",
		"registry.k8s.io/e2e-test-images/nonewprivs:1.3",
		"registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9",
		r + "hostnet-nginx-amd64:latest",
		r + "test-image-user-uid:latest", r + "test-image-user-username:latest",
		r + "test-image-user-uid-group:latest", r + "test-image-user-username-group:latest",
		r + "test-image-predefined-group:latest", r + "test-image-latest:latest",
		r + "test-image-tag:test", r + "test-image-tag:all",
		r + "test-image-1:latest", r + "test-image-2:latest", r + "test-image-3:latest",
		r + "test-image-tags:1", r + "test-image-tags:2", r + "test-image-tags:3",
		"public.ecr.aws/docker/library/busybox:1.35.0-glibc", "public.ecr.aws/docker/library/busybox:1-uclibc",
		"public.ecr.aws/docker/library/busybox:1", "public.ecr.aws/docker/library/busybox:1-glibc",
		"public.ecr.aws/docker/library/busybox:1-musl",
	}
	names := Names()
	for _, n := range critest {
		if !slices.Contains(names, n) {
			t.Errorf("Names() lacks %s", n)
		}
	}
	if slices.Contains(names, PrivateImage) {
		t.Errorf("Names() lists %s", PrivateImage)
	}
}
