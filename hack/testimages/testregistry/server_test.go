package testregistry

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// remoteImage fetches the image the registry serves as ref.
func remoteImage(t *testing.T, srv *Server, ref string, opts ...remote.Option) (v1.Image, error) {
	t.Helper()
	r, err := srv.Ref(ref)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := name.ParseReference(r, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return remote.Image(parsed, append(opts, remote.WithContext(context.Background()))...)
}

func TestEveryNameResolves(t *testing.T) {
	srv := testServer(t)
	for _, n := range Names() {
		img, err := remoteImage(t, srv, n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		got, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := srv.Images()[n].Digest()
		if got != want {
			t.Errorf("%s: served digest %s, built %s", n, got, want)
		}
		mt, _ := img.MediaType()
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatalf("%s: config: %v", n, err)
		}
		if mt != types.DockerManifestSchema2 || cf.OS != "linux" || cf.Architecture != "amd64" {
			t.Errorf("%s: media type %s, platform %s/%s; want a linux/amd64 Docker schema2 image", n, mt, cf.OS, cf.Architecture)
		}
	}
}

func TestImageIdentity(t *testing.T) {
	srv := testServer(t)
	digest := func(n string) v1.Hash {
		img, err := remoteImage(t, srv, n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	const r = criToolsRegistry
	if a, b, c := digest(r+"test-image-1:latest"), digest(r+"test-image-2:latest"), digest(r+"test-image-3:latest"); a == b || b == c || a == c {
		t.Errorf("test-image-1/2/3 share digests: %s %s %s", a, b, c)
	}
	if a, b, c := digest(r+"test-image-tags:1"), digest(r+"test-image-tags:2"), digest(r+"test-image-tags:3"); a != b || b != c {
		t.Errorf("test-image-tags:1/2/3 differ: %s %s %s", a, b, c)
	}
	if a, b := digest("registry.k8s.io/pause:3.9"), digest("k8s.gcr.io/pause:3.9"); a != b {
		t.Errorf("pause:3.9 differs between registry.k8s.io and k8s.gcr.io: %s %s", a, b)
	}

	// Apart from the names of one recipe, every image is distinct.
	owner := map[v1.Hash]string{}
	for _, rc := range recipes {
		d, err := srv.Images()[rc.names[0]].Digest()
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := owner[d]; ok {
			t.Errorf("%s and %s are the same image %s", o, rc.names[0], d)
		}
		owner[d] = rc.names[0]
	}
}

func TestImageConfigs(t *testing.T) {
	srv := testServer(t)
	tests := []struct {
		name                   string
		user, workdir, stopSig string
		entrypoint, cmd, ports []string
	}{
		{name: DefaultImage, cmd: []string{"sh"}},
		{name: NginxImage, cmd: []string{"nginx", "-g", "daemon off;"}, ports: []string{"80/tcp"}, stopSig: "SIGTERM"},
		{name: HostNetNginxImage, cmd: []string{"nginx", "-g", "daemon off;"}, ports: []string{"80/tcp"}, stopSig: "SIGQUIT"},
		{name: HttpdImage, cmd: []string{"httpd-foreground"}, ports: []string{"80/tcp"}, stopSig: "SIGWINCH", workdir: "/usr/local/apache2"},
		{name: NoNewPrivsImage, entrypoint: []string{"/usr/local/bin/nnp"}},
		{name: PauseImage, entrypoint: []string{"/pause"}, user: "65535:65535", workdir: "/"},
		{name: criToolsRegistry + "test-image-user-uid:latest", cmd: []string{"sh"}, user: "1002"},
		{name: criToolsRegistry + "test-image-user-username:latest", cmd: []string{"sh"}, user: "www-data"},
		{name: criToolsRegistry + "test-image-user-uid-group:latest", cmd: []string{"sh"}, user: "1003:1004"},
		{name: criToolsRegistry + "test-image-user-username-group:latest", cmd: []string{"sh"}, user: "www-data:1004"},
		{name: criToolsRegistry + "test-image-predefined-group:latest", cmd: []string{"sh"}, user: "1000"},
	}
	for _, tt := range tests {
		img, err := remoteImage(t, srv, tt.name)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cf.Config
		var ports []string
		for p := range c.ExposedPorts {
			ports = append(ports, p)
		}
		if c.User != tt.user || c.WorkingDir != tt.workdir || c.StopSignal != tt.stopSig ||
			!slices.Equal(c.Entrypoint, tt.entrypoint) || !slices.Equal(c.Cmd, tt.cmd) || !slices.Equal(ports, tt.ports) {
			t.Errorf("%s: user %q workdir %q stop %q entrypoint %q cmd %q ports %q; want %q %q %q %q %q %q", tt.name,
				c.User, c.WorkingDir, c.StopSignal, c.Entrypoint, c.Cmd, ports,
				tt.user, tt.workdir, tt.stopSig, tt.entrypoint, tt.cmd, tt.ports)
		}
		if !slices.ContainsFunc(c.Env, func(e string) bool { return len(e) > 5 && e[:5] == "PATH=" }) {
			t.Errorf("%s: no PATH in Env %q", tt.name, c.Env)
		}
		if c.Labels[LabelName] != tt.name {
			t.Errorf("%s: label %s = %q", tt.name, LabelName, c.Labels[LabelName])
		}
	}
}

func TestPrivateRepoRequiresAuth(t *testing.T) {
	srv := testServer(t)
	unauthorized := func(err error) bool {
		var terr *transport.Error
		return errors.As(err, &terr) && terr.StatusCode == http.StatusUnauthorized
	}
	if _, err := remoteImage(t, srv, PrivateImage); !unauthorized(err) {
		t.Errorf("anonymous pull of %s: got %v, want 401", PrivateImage, err)
	}
	wrong := &authn.Basic{Username: testCreds.Username, Password: "wrong"}
	if _, err := remoteImage(t, srv, PrivateImage, remote.WithAuth(wrong)); !unauthorized(err) {
		t.Errorf("pull of %s with a wrong password: got %v, want 401", PrivateImage, err)
	}
	right := &authn.Basic{Username: testCreds.Username, Password: testCreds.Password}
	img, err := remoteImage(t, srv, PrivateImage, remote.WithAuth(right))
	if err != nil {
		t.Fatalf("pull of %s with credentials: %v", PrivateImage, err)
	}
	if _, err := img.ConfigFile(); err != nil {
		t.Errorf("reading %s's config with credentials: %v", PrivateImage, err)
	}
	if _, err := remoteImage(t, srv, DefaultImage, remote.WithAuth(wrong)); err != nil {
		t.Errorf("public pull with unrelated credentials: %v", err)
	}
}

func TestStartRefusesNonLoopbackAddr(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:5000", "example.com:80"} {
		if _, err := Start(context.Background(), Options{Addr: addr, Images: map[string]v1.Image{}}); err == nil {
			t.Errorf("Start(%q) succeeded", addr)
		}
	}
}
