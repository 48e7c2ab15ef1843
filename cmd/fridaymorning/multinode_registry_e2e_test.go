//go:build integration

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dockerswarm "github.com/docker/docker/api/types/swarm"
)

// privateRegistry is a small registry (API v2, enough to resolve and pull one image) on the bed's
// bridge, behind basic authentication, which records who asked for what: a local `registry` image
// cannot be pulled on this machine. The engines of the bed take the bridge for an insecure registry.
type privateRegistry struct {
	host           string // HOST:PORT
	user, password string
	manifest       []byte
	digest         string // the manifest's
	blobs          map[string][]byte

	mu   sync.Mutex
	seen []registryRequest
}

// registryRequest is one request the registry answered.
type registryRequest struct {
	from, method, path string
	authorized         bool
}

// newPrivateRegistry serves the image ref of the manager's engine as fm/demoapp:TAG.
func (b *mnBed) newPrivateRegistry(ref, tag string) *privateRegistry {
	b.t.Helper()
	r := &privateRegistry{user: "fm-robot", password: fmt.Sprintf("reg-%d", time.Now().UnixNano()), blobs: map[string][]byte{}}
	rc, err := b.docker.ImageSave(context.Background(), []string{ref})
	if err != nil {
		b.t.Fatal(err)
	}
	defer rc.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if files[h.Name], err = io.ReadAll(tr); err != nil {
				b.t.Fatal(err)
			}
		}
	}
	var saved []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(files["manifest.json"], &saved); err != nil || len(saved) != 1 {
		b.t.Fatalf("docker save of %s: manifest.json %s: %v", ref, files["manifest.json"], err)
	}
	type descriptor struct {
		MediaType string `json:"mediaType"`
		Size      int    `json:"size"`
		Digest    string `json:"digest"`
	}
	add := func(mediaType string, blob []byte) descriptor {
		d := fmt.Sprintf("sha256:%x", sha256.Sum256(blob))
		r.blobs[d] = blob
		return descriptor{mediaType, len(blob), d}
	}
	manifest := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Config        descriptor   `json:"config"`
		Layers        []descriptor `json:"layers"`
	}{SchemaVersion: 2, MediaType: "application/vnd.docker.distribution.manifest.v2+json",
		Config: add("application/vnd.docker.container.image.v1+json", files[saved[0].Config])}
	for _, l := range saved[0].Layers {
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		_, _ = w.Write(files[l])
		_ = w.Close()
		manifest.Layers = append(manifest.Layers, add("application/vnd.docker.image.rootfs.diff.tar.gzip", gz.Bytes()))
	}
	if r.manifest, err = json.Marshal(manifest); err != nil {
		b.t.Fatal(err)
	}
	r.digest = fmt.Sprintf("sha256:%x", sha256.Sum256(r.manifest))

	l, err := net.Listen("tcp", mnEnv(b.t, "FM_MN_HOST_IP")+":0")
	if err != nil {
		b.t.Fatal(err)
	}
	r.host = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.serve(w, req, tag) })}
	go func() { _ = srv.Serve(l) }()
	b.t.Cleanup(func() { _ = srv.Close() })
	return r
}

func (r *privateRegistry) serve(w http.ResponseWriter, req *http.Request, tag string) {
	user, pass, ok := req.BasicAuth()
	authorized := ok && user == r.user && pass == r.password
	from, _, _ := net.SplitHostPort(req.RemoteAddr)
	r.mu.Lock()
	r.seen = append(r.seen, registryRequest{from, req.Method, req.URL.Path, authorized})
	r.mu.Unlock()
	if !authorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="fridaymorning test registry"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	switch p := req.URL.Path; {
	case p == "/v2/":
		io.WriteString(w, "{}")
	case p == "/v2/fm/demoapp/manifests/"+tag || p == "/v2/fm/demoapp/manifests/"+r.digest:
		w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
		w.Header().Set("Docker-Content-Digest", r.digest)
		w.Header().Set("Content-Length", fmt.Sprint(len(r.manifest)))
		if req.Method != http.MethodHead {
			_, _ = w.Write(r.manifest)
		}
	case strings.HasPrefix(p, "/v2/fm/demoapp/blobs/"):
		blob, ok := r.blobs[strings.TrimPrefix(p, "/v2/fm/demoapp/blobs/")]
		if !ok {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
		if req.Method != http.MethodHead {
			_, _ = w.Write(blob)
		}
	default:
		http.NotFound(w, req)
	}
}

// requests returns what the registry answered so far.
func (r *privateRegistry) requests() []registryRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]registryRequest(nil), r.seen...)
}

// dockerConfig writes a Docker client config with the registry's credentials, as docker login would.
func (r *privateRegistry) dockerConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(r.user + ":" + r.password))
	cfg := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, r.host, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestMultiNodePrivateRegistry: a release of an image only a private registry has, with the credentials
// in the Docker config of the user running fridaymorning. The preflight finds the image with them; the
// canary's task on a worker and the promoted tasks on every node pull it with them, as `docker service
// create --with-registry-auth` would have them do; the promotion runs the digest the preflight resolved.
// (The test checks what a real engine sends to the registry: every manifest and layer was fetched with
// the credentials, by the manager and by the workers.)
func TestMultiNodePrivateRegistry(t *testing.T) {
	b := multiNode(t)
	reg := b.newPrivateRegistry(b.repo+":v2", "v2")
	img := reg.host + "/fm/demoapp:v2"
	b.secret = reg.password
	code, out, load, nodes := b.releaseUnderLoad(b.config(mnEnv(t, "FM_MN_RUNTIME_TCP")), img, "DOCKER_CONFIG="+reg.dockerConfig(t))

	pulls := map[string]int{} // authorized manifest and blob fetches, by the engine's address
	var unauthorized []string
	for _, r := range reg.requests() {
		switch {
		case r.path == "/v2/":
		case r.authorized:
			pulls[r.from]++
		default:
			unauthorized = append(unauthorized, r.method+" "+r.path+" from "+r.from)
		}
	}
	t.Logf("private registry release: exit %d; loadgen sent %d, ok %d, failed %d, by version %v; canary ran on %v; authorized fetches by address %v",
		code, load.Sent, load.OK, load.Failed, load.ByVersion, nodes, pulls)
	if code != exitPromoted {
		t.Fatalf("exit %d, want %d (promoted)", code, exitPromoted)
	}
	if len(unauthorized) > 0 {
		t.Errorf("fetched without the credentials: %v", unauthorized)
	}
	subnet := mnEnv(t, "FM_MN_SUBNET")
	for _, node := range []string{"2", "3", "4"} {
		if pulls[subnet+"."+node] == 0 {
			t.Errorf("the engine at %s.%s fetched nothing with the credentials (%v)", subnet, node, pulls)
		}
	}
	if !firstOnWorker(nodes) {
		t.Errorf("the canary's tasks ran on %v: want its first task on a worker, pulling", nodes)
	}
	svc, _, err := b.docker.ServiceInspectWithRaw(context.Background(), b.service, dockerswarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := svc.Spec.TaskTemplate.ContainerSpec.Image, img+"@"+reg.digest; got != want {
		t.Errorf("stable runs %s, want %s", got, want)
	}
	if load.Failed != 0 || load.ByVersion["v2"] == 0 {
		t.Errorf("load %+v: want no failed request and v2 served", load)
	}
	if strings.Contains(out, reg.password) {
		t.Error("the registry password appears in fridaymorning's output")
	}
}
