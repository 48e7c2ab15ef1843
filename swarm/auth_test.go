package swarm

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/swarm"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fakeHelper puts docker-credential-fmtest on PATH: it answers for registry.example.com only.
func fakeHelper(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
read server
case "$server" in
registry.example.com) echo '{"ServerURL":"registry.example.com","Username":"robot","Secret":"helper-secret"}' ;;
tokens.example.com) echo '{"ServerURL":"tokens.example.com","Username":"<token>","Secret":"refresh-token"}' ;;
*) echo "credentials not found in native keychain"; exit 1 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-fmtest"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestAuthFrom(t *testing.T) {
	fakeHelper(t)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	files := `{"auths": {
		"registry.example.com:5000": {"auth": "` + b64("ci:s3cret") + `"},
		"https://scheme.example.com/v1/": {"auth": "` + b64("ci:with-scheme") + `"},
		"https://index.docker.io/v1/": {"auth": "` + b64("hubuser:hubpass") + `"},
		"token.example.com": {"identitytoken": "id-token"}}}`
	helpers := `{"credHelpers": {"registry.example.com": "fmtest", "tokens.example.com": "fmtest"}, "credsStore": "fmtest"}`
	tests := []struct {
		name, config, image string
		want                registry.AuthConfig // zero: no credentials sent
	}{
		{"a registry with a port", files, "registry.example.com:5000/shop:v2", registry.AuthConfig{Username: "ci", Password: "s3cret", ServerAddress: "registry.example.com:5000"}},
		{"a key with a scheme", files, "scheme.example.com/shop:v2", registry.AuthConfig{Username: "ci", Password: "with-scheme", ServerAddress: "scheme.example.com"}},
		{"Docker Hub", files, "library/nginx:1", registry.AuthConfig{Username: "hubuser", Password: "hubpass", ServerAddress: dockerHubAuthKey}},
		{"an identity token", files, "token.example.com/shop", registry.AuthConfig{IdentityToken: "id-token", ServerAddress: "token.example.com"}},
		{"no credentials for the registry", files, "other.example.com/shop:v2", registry.AuthConfig{}},
		{"an image ID", files, "sha256:4f5dcddeb16a5d2cbc7e4609431ac3d58f762516ca75945eb499b0eea316f663", registry.AuthConfig{}},
		{"a credential helper", helpers, "registry.example.com/shop:v2", registry.AuthConfig{Username: "robot", Password: "helper-secret", ServerAddress: "registry.example.com"}},
		{"a helper's identity token", helpers, "tokens.example.com/shop:v2", registry.AuthConfig{IdentityToken: "refresh-token", ServerAddress: "tokens.example.com"}},
		{"a store without them", helpers, "nowhere.example.com/shop:v2", registry.AuthConfig{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := authFrom(context.Background(), writeConfig(t, tt.config), tt.image)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == (registry.AuthConfig{}) {
				if got != "" {
					t.Fatalf("credentials %q sent, want none", got)
				}
				return
			}
			ac, err := registry.DecodeAuthConfig(got)
			if err != nil {
				t.Fatal(err)
			}
			if *ac != tt.want {
				t.Fatalf("got %+v, want %+v", *ac, tt.want)
			}
		})
	}
}

func TestAuthFromErrors(t *testing.T) {
	if got, err := authFrom(context.Background(), filepath.Join(t.TempDir(), "missing.json"), "registry.example.com/shop"); got != "" || err != nil {
		t.Errorf("no config file: %q %v, want no credentials and no error", got, err)
	}
	_, err := authFrom(context.Background(), writeConfig(t, `{"auths": `), "registry.example.com/shop")
	if err == nil || !strings.Contains(err.Error(), "DOCKER_CONFIG") {
		t.Errorf("a malformed config: %v, want an error saying what to do", err)
	}
	_, err = authFrom(context.Background(), writeConfig(t, `{"auths": {"registry.example.com": {"auth": "bm90LWEtcGFpcg=="}}}`), "registry.example.com/shop")
	if err == nil || !strings.Contains(err.Error(), "docker login registry.example.com") || strings.Contains(err.Error(), "not-a-pair") {
		t.Errorf("an auth that is no user:password: %v, want docker login advice without the value", err)
	}
	_, err = authFrom(context.Background(), writeConfig(t, `{"credsStore": "fm-no-such-helper"}`), "registry.example.com/shop")
	if err == nil || !strings.Contains(err.Error(), "docker-credential-fm-no-such-helper") {
		t.Errorf("a missing helper: %v, want its name", err)
	}
}

func TestReleasedImage(t *testing.T) {
	id := "sha256:4f5dcddeb16a5d2cbc7e4609431ac3d58f762516ca75945eb499b0eea316f663"
	for _, tt := range []struct {
		name string
		spec swarm.ServiceSpec
		want string
	}{
		{"never released", newSpec("shop:v1", nil), "shop:v1"},
		{"promoted, still on the pinned bits", newSpec(id, map[string]string{LabelImage: "shop:v2", LabelPinned: id}), "shop:v2"},
		{"changed since by someone else", newSpec("shop:v3@sha256:abc", map[string]string{LabelImage: "shop:v2", LabelPinned: id}), "shop:v3@sha256:abc"},
	} {
		if got := ReleasedImage(tt.spec); got != tt.want {
			t.Errorf("%s: ReleasedImage = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func newSpec(image string, labels map[string]string) swarm.ServiceSpec {
	return swarm.ServiceSpec{Annotations: swarm.Annotations{Labels: labels},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}}}
}
