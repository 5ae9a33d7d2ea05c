package builder

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRegistryHosts(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "docker.io"), 0o755); err != nil {
		t.Fatal(err)
	}
	hostsTOML := `server = "https://registry-1.docker.io"

[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
`
	if err := os.WriteFile(filepath.Join(dir, "docker.io", "hosts.toml"), []byte(hostsTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir, host string
		want            []string // scheme://host of each endpoint, in order
	}{
		{name: "mirror from hosts.toml, then the server", dir: dir, host: "docker.io",
			want: []string{"http://127.0.0.1:5000", "https://registry-1.docker.io"}},
		{name: "host without hosts.toml is reached directly", dir: dir, host: "ghcr.io", want: []string{"https://ghcr.io"}},
		{name: "no hosts dir", dir: "", host: "quay.io", want: []string{"https://quay.io"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hosts, err := registryHosts(tc.dir)(tc.host)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, h := range hosts {
				got = append(got, h.Scheme+"://"+h.Host)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("endpoints %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("endpoints %v, want %v", got, tc.want)
				}
			}
		})
	}
}
