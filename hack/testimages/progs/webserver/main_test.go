package main

import "testing"

func TestListenPort(t *testing.T) {
	tests := []struct {
		conf string
		want int
		ok   bool
	}{
		{"server {\n    listen       12003;\n    server_name  localhost;\n}\n", 12003, true},
		{"server {\n  listen 127.0.0.1:8080 default_server;\n}\n", 8080, true},
		{"server {\n  #listen 1;\n  listen 80;\n}\n", 80, true},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := listenPort(tt.conf)
		if got != tt.want || ok != tt.ok {
			t.Errorf("listenPort(%q) = %d, %v; want %d, %v", tt.conf, got, ok, tt.want, tt.ok)
		}
	}
}
