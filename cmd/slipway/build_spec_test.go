package main

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
)

func TestFrontendAttrs(t *testing.T) {
	env := map[string]string{"FROM_ENV": "e", "EMPTY": ""}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct {
		name string
		o    buildOptions
		want map[string]string
	}{
		{name: "defaults prefer the node's images", o: buildOptions{},
			want: map[string]string{"filename": "Dockerfile", "image-resolve-mode": "local"}},
		{name: "everything",
			o: buildOptions{buildArgs: []string{"A=1", "B=x=y", "FROM_ENV", "EMPTY", "UNSET"}, labels: []string{"l=v", "e="},
				target: "t", platform: "linux/amd64", noCache: true, pull: true},
			want: map[string]string{"filename": "Dockerfile", "build-arg:A": "1", "build-arg:B": "x=y",
				"build-arg:FROM_ENV": "e", "build-arg:EMPTY": "", "label:l": "v", "label:e": "",
				"target": "t", "platform": "linux/amd64", "no-cache": "", "image-resolve-mode": "pull"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := frontendAttrs(tc.o, "Dockerfile", getenv); !maps.Equal(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestLocalDirs(t *testing.T) {
	ctx := t.TempDir()
	other := t.TempDir()
	df := filepath.Join(other, "build.Dockerfile")
	if err := os.WriteFile(df, []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                     string
		file                     string
		stdin                    string
		wantDir, wantName        string
		wantErr                  string
		wantStdinDockerfileWrote bool
	}{
		{name: "default Dockerfile in the context", wantDir: ctx, wantName: "Dockerfile"},
		{name: "-f outside the context", file: df, wantDir: other, wantName: "build.Dockerfile"},
		{name: "-f from stdin", file: "-", stdin: "FROM busybox\n", wantName: "Dockerfile", wantStdinDockerfileWrote: true},
		{name: "-f missing", file: filepath.Join(other, "nope"), wantErr: "-f " + filepath.Join(other, "nope")},
		{name: "-f is a directory", file: other, wantErr: "is a directory, not a Dockerfile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, dir, name, cleanup, err := localDirs(buildOptions{contextDir: ctx, file: tc.file}, strings.NewReader(tc.stdin))
			defer cleanup()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c != ctx || name != tc.wantName || (tc.wantDir != "" && dir != tc.wantDir) {
				t.Errorf("got %s %s %s", c, dir, name)
			}
			if tc.wantStdinDockerfileWrote {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil || string(b) != tc.stdin {
					t.Errorf("stdin Dockerfile = %q, %v", b, err)
				}
				cleanup()
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					t.Errorf("cleanup left %s", dir)
				}
			}
		})
	}
}

func TestSecretSources(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    secretsprovider.Source
		wantErr string
	}{
		{name: "file", in: "id=a,src=/s", want: secretsprovider.Source{ID: "a", FilePath: "/s"}},
		{name: "source alias", in: "id=a,source=/s", want: secretsprovider.Source{ID: "a", FilePath: "/s"}},
		{name: "env", in: "id=a,env=VAR", want: secretsprovider.Source{ID: "a", Env: "VAR"}},
		{name: "type=env defaults to the id", in: "type=env,id=TOKEN", want: secretsprovider.Source{ID: "TOKEN", Env: "TOKEN"}},
		{name: "type=env with src names the variable", in: "type=env,id=a,src=VAR", want: secretsprovider.Source{ID: "a", Env: "VAR"}},
		{name: "type=file", in: "type=file,id=a,src=/s", want: secretsprovider.Source{ID: "a", FilePath: "/s"}},
		{name: "neither: BuildKit decides", in: "id=a", want: secretsprovider.Source{ID: "a"}},
		{name: "no id", in: "src=/s", wantErr: "id= is required"},
		{name: "both", in: "id=a,src=/s,env=V", wantErr: "give src= or env=, not both"},
		{name: "bad type", in: "id=a,type=vault", wantErr: `type must be file or env, got "vault"`},
		{name: "unknown key", in: "id=a,sorce=/s", wantErr: `unknown key "sorce"`},
		{name: "bare field", in: "id=a,required", wantErr: `"required" is not key=value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := secretSources([]string{tc.in})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSSHAgents(t *testing.T) {
	got, err := sshAgents([]string{"default", "git=/a.sock,/b.key"})
	if err != nil {
		t.Fatal(err)
	}
	want := []sshprovider.AgentConfig{{ID: "default"}, {ID: "git", Paths: []string{"/a.sock", "/b.key"}}}
	if len(got) != 2 || got[0].ID != want[0].ID || len(got[0].Paths) != 0 || got[1].ID != "git" || strings.Join(got[1].Paths, ",") != "/a.sock,/b.key" {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := sshAgents([]string{"=/a.sock"}); err == nil || !strings.Contains(err.Error(), "want default or ID[=PATH,...]") {
		t.Errorf("error = %v", err)
	}
}
