package gate

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fridaymorning/fridaymorning/release"
)

var req = release.GateRequest{Point: release.GatePreRollout, ReleaseID: "r1", Service: "shop", Canary: "shop-canary", Image: "shop:v2"}

// TestHTTPGate: a local endpoint that answers 200 opens the gate and sees the request and the canary's
// address; any other status keeps it shut with the body's first line as the answer; the URL's secret
// never shows.
func TestHTTPGate(t *testing.T) {
	var got payload
	status, body := http.StatusOK, ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &got)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	g, err := NewHTTP(srv.URL+"/hooks/s3cret", "http://127.0.0.1:18411", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Open(context.Background(), req); err != nil {
		t.Fatalf("200: %v", err)
	}
	if got.Canary != "shop-canary" || got.CanaryURL != "http://127.0.0.1:18411" || got.Point != release.GatePreRollout {
		t.Errorf("endpoint got %+v", got)
	}
	status, body = http.StatusForbidden, "\nnot approved: change freeze until Monday\nmore"
	err = g.Open(context.Background(), req)
	if err == nil || err.Error() != "HTTP 403: not approved: change freeze until Monday" {
		t.Errorf("403: %v", err)
	}
	srv.Close()
	err = g.Open(context.Background(), req)
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "POST to http://127.0.0.1") {
		t.Errorf("down: %v", err)
	}
	if _, err := NewHTTP("ftp://x/s3cret", "", nil); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad URL: %v", err)
	}
}

// TestCommandGate: a command that exits 0 opens the gate and sees the release in its environment and on
// its standard input; one that fails keeps it shut with its last line as the answer.
func TestCommandGate(t *testing.T) {
	g, err := NewCommand([]string{"sh", "-c", `read -r json; case "$json" in *shop-canary*) ;; *) exit 9;; esac; test "$FRIDAYMORNING_GATE" = pre_rollout && test "$FRIDAYMORNING_CANARY_URL" = http://c:1`}, "http://c:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Open(context.Background(), req); err != nil {
		t.Fatalf("command: %v", err)
	}
	bad, _ := NewCommand([]string{"sh", "-c", "echo running smoke tests; echo 'GET /cart: 500' >&2; exit 1"}, "")
	if err := bad.Open(context.Background(), req); err == nil || !strings.HasSuffix(err.Error(), "GET /cart: 500") {
		t.Errorf("failing command: %v", err)
	}
	if _, err := NewCommand(nil, ""); err == nil {
		t.Error("an empty command was accepted")
	}
}
