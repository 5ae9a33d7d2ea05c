package main

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCloseInheritedFDsOnExec(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "inherited")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A descriptor as a parent would leave it: inheritable.
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
		t.Fatalf("dup'd descriptor is already close-on-exec")
	}
	closeInheritedFDsOnExec()
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("descriptor %d is still inherited by children", fd)
	}
	if flags, _ := unix.FcntlInt(uintptr(2), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
		t.Errorf("stderr was marked close-on-exec")
	}
}
