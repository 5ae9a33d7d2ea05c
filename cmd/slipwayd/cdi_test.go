package main

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestCDIConfig(t *testing.T) {
	c, err := loadTestConfig(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if !c.CRI.EnableCDI || !reflect.DeepEqual(c.CRI.CDISpecDirs, []string{"/etc/cdi", "/var/run/cdi"}) {
		t.Errorf("defaults: enable %v dirs %v", c.CRI.EnableCDI, c.CRI.CDISpecDirs)
	}

	c, err = loadTestConfig(t, "[cri]\nenable_cdi = false\ncdi_spec_dirs = [\"/a\"]\n", "--cdi-spec-dirs", "/b,/c")
	if err != nil {
		t.Fatal(err)
	}
	if c.CRI.EnableCDI || !reflect.DeepEqual(c.CRI.CDISpecDirs, []string{"/b", "/c"}) {
		t.Errorf("file and flag: enable %v dirs %v", c.CRI.EnableCDI, c.CRI.CDISpecDirs)
	}
	if cdiRegistry(context.Background(), c.CRI) != nil {
		t.Error("enable_cdi = false still gives a registry")
	}

	if _, err := loadTestConfig(t, "[cri]\ncdi_spec_dirs = [\"cdi\"]\n"); err == nil || !strings.Contains(err.Error(), "cri.cdi_spec_dirs") {
		t.Errorf("relative dir: %v", err)
	}
}
