package images

import "testing"

func TestRepositories(t *testing.T) {
	for _, tc := range []struct {
		refs []string
		want []string
	}{
		{nil, nil},
		{
			[]string{"docker.io/library/busybox:1", "docker.io/library/busybox@sha256:" + hex64, "gcr.io/x/y:2"},
			[]string{"docker.io/library/busybox", "gcr.io/x/y"},
		},
		{[]string{"Not A Reference", "gcr.io/x/y:2"}, []string{"gcr.io/x/y"}},
	} {
		if got := repositories(tc.refs); !equal(got, tc.want) {
			t.Errorf("repositories(%v) = %v, want %v", tc.refs, got, tc.want)
		}
	}
	for _, tc := range []struct {
		a, b []string
		want bool
	}{
		{nil, nil, true},
		{[]string{"a"}, []string{"a", "b"}, true},
		{[]string{"a", "c"}, []string{"a", "b"}, false},
	} {
		if got := subset(tc.a, tc.b); got != tc.want {
			t.Errorf("subset(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
