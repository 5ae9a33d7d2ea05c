package main

import "testing"

func TestCheckPprofAddress(t *testing.T) {
	for addr, ok := range map[string]bool{
		"":               true,
		"127.0.0.1:6060": true,
		"[::1]:6060":     true,
		"localhost:0":    true,
		"0.0.0.0:6060":   false,
		":6060":          false,
		"10.0.0.1:6060":  false,
		"127.0.0.1":      false,
	} {
		if err := checkPprofAddress(addr); (err == nil) != ok {
			t.Errorf("checkPprofAddress(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}
