package builder

import (
	"strings"
	"testing"
)

func TestLockRoot(t *testing.T) {
	root := t.TempDir()
	first, err := lockRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockRoot(root); err == nil || !strings.Contains(err.Error(), "in use by another builder") {
		t.Fatalf("second lock: error = %v, want the root in use", err)
	}
	unlockRoot(first)
	again, err := lockRoot(root)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlockRoot(again)
}
