package swarm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/registry"
)

// dockerHubAuthKey is the key Docker's config keeps Docker Hub's credentials under.
const dockerHubAuthKey = "https://index.docker.io/v1/"

// dockerConfig is what fridaymorning reads of a Docker client config file (config.json).
type dockerConfig struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

// registryAuth returns the X-Registry-Auth value for image's registry, as `docker service create
// --with-registry-auth` sends it: the credentials the Docker config of the user running fridaymorning
// holds for that registry ($DOCKER_CONFIG/config.json, else ~/.docker/config.json; credential helpers
// and stores included). Swarm keeps them with the service so that tasks on every node can pull. It
// returns "" when there are none, or when image names no repository (an image ID).
func registryAuth(ctx context.Context, image string) (string, error) {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", nil
		}
		dir = filepath.Join(home, ".docker")
	}
	return authFrom(ctx, filepath.Join(dir, "config.json"), image)
}

func authFrom(ctx context.Context, path, image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil || strings.HasPrefix(image, "sha256:") {
		return "", nil // an image ID ("sha256:…" parses as a Docker Hub tag), or no reference at all
	}
	host := reference.Domain(named)
	key := host
	if host == "docker.io" {
		key = dockerHubAuthKey
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("swarm: reading registry credentials from %s: %w", path, err)
	}
	var cfg dockerConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return "", fmt.Errorf("swarm: %s is not a Docker config (%v): fix it, or point DOCKER_CONFIG at another directory", path, err)
	}
	var ac registry.AuthConfig
	helper := cfg.CredHelpers[host]
	if helper == "" {
		helper = cfg.CredsStore
	}
	if helper != "" {
		if ac, err = fromHelper(ctx, helper, key); err != nil {
			return "", err
		}
	} else {
		entry, ok := cfg.Auths[key]
		if !ok {
			for k, e := range cfg.Auths {
				if authHost(k) == host {
					entry, ok = e, true
					break
				}
			}
		}
		if !ok {
			return "", nil
		}
		if entry.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(entry.Auth)
			user, pass, found := strings.Cut(string(dec), ":")
			if err != nil || !found {
				return "", fmt.Errorf("swarm: the credentials for %s in %s do not decode to user:password: run docker login %s again", host, path, host)
			}
			ac.Username, ac.Password = user, pass
		}
		ac.IdentityToken = entry.IdentityToken
	}
	if ac.Username == "" && ac.Password == "" && ac.IdentityToken == "" {
		return "", nil
	}
	ac.ServerAddress = key
	return registry.EncodeAuthConfig(ac)
}

// authHost is the registry host of a key of the config's auths ("https://host/v1/" or "host").
func authHost(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	host, _, _ := strings.Cut(key, "/")
	return host
}

// fromHelper asks docker-credential-<helper> for server's credentials; none stored is no error.
func fromHelper(ctx context.Context, helper, server string) (registry.AuthConfig, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker-credential-"+helper, "get")
	cmd.Stdin = strings.NewReader(server)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if strings.Contains(stdout.String()+stderr.String(), "credentials not found") {
			return registry.AuthConfig{}, nil
		}
		return registry.AuthConfig{}, fmt.Errorf("swarm: credential helper docker-credential-%s for %s: %w: check that it is installed and unlocked (docker login %s works)", helper, server, err, server)
	}
	var got struct{ Username, Secret string }
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		return registry.AuthConfig{}, fmt.Errorf("swarm: credential helper docker-credential-%s answered no credentials for %s: %v", helper, server, err)
	}
	if got.Username == "<token>" {
		return registry.AuthConfig{IdentityToken: got.Secret}, nil
	}
	return registry.AuthConfig{Username: got.Username, Password: got.Secret}, nil
}
