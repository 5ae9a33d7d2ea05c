package embedded

import (
	"slices"
	"testing"
)

func TestWithoutNotifySocket(t *testing.T) {
	env := []string{"PATH=/bin", "NOTIFY_SOCKET=/run/systemd/notify", "HOME=/root"}
	got := withoutNotifySocket(env)
	if want := []string{"PATH=/bin", "HOME=/root"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if env[1] != "NOTIFY_SOCKET=/run/systemd/notify" {
		t.Errorf("the caller's slice was changed: %v", env)
	}
}
