package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenUnixSocketAndDirModes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dirMode os.FileMode // 0: the directory does not exist
		owner   int         // chown the directory to this uid when not 0
		wantErr string
	}{
		{name: "missing dir is made 0711"},
		{name: "private dir", dirMode: 0o700},
		{name: "world-writable dir", dirMode: 0o777, wantErr: "writable by every user"},
		{name: "sticky world-writable dir", dirMode: os.ModeSticky | 0o777, wantErr: "writable by every user"},
		{name: "dir of another user", dirMode: 0o755, owner: 4321, wantErr: "belongs to uid 4321"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			if tc.dirMode != 0 {
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tc.dirMode); err != nil {
					t.Fatal(err)
				}
			}
			if tc.owner != 0 {
				if os.Geteuid() != 0 {
					t.Skip("needs root to chown")
				}
				if err := os.Chown(dir, tc.owner, tc.owner); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, "test.sock")
			l, err := listenUnix(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("listenUnix = %v, want an error containing %q", err, tc.wantErr)
				}
				if _, err := os.Lstat(path); !os.IsNotExist(err) {
					t.Errorf("socket created in a refused dir: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
				t.Errorf("socket mode %v, want socket 0600", fi.Mode())
			}
			if tc.dirMode == 0 {
				if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o711 {
					t.Errorf("created dir mode %v (%v), want 0711", di.Mode(), err)
				}
			}
		})
	}
}

func TestMakeStateDir(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     os.FileMode // 0: missing
		wantMode os.FileMode
		wantErr  string
	}{
		{name: "missing", wantMode: 0o711},
		{name: "private", mode: 0o700, wantMode: 0o700},
		{name: "emptyDir volume", mode: 0o777, wantMode: 0o755},
		{name: "group-writable", mode: 0o770, wantMode: 0o750},
		{name: "shared like /tmp", mode: os.ModeSticky | 0o777, wantErr: "shared directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			if tc.mode != 0 {
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tc.mode); err != nil {
					t.Fatal(err)
				}
			}
			err := makeStateDir(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("makeStateDir = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tc.wantMode {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), tc.wantMode)
			}
		})
	}
}
