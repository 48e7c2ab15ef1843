//go:build integration

package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/haproxy/dataplanetest"
)

// The release end to end through the Data Plane API v3: the stack of newStack, with a second test
// server, in v3 mode, over the same HAProxy, and the stack's fridaymorning.yaml pointed at it. The v2
// releases are TestReleasePromotesHealthyVersionWithoutFailedRequests and TestReleaseAbortsErroringVersion.

// v3Stack is a stack whose fridaymorning.yaml reaches HAProxy through a v3 test server, at url (the
// server's base plus suffix: "/v3", or "" to have fridaymorning find the version).
func v3Stack(t *testing.T, suffix string, opts ...stackOption) (*stack, *dataplanetest.Server) {
	t.Helper()
	s := newStack(t, opts...)
	dir := filepath.Dir(s.configPath)
	dp, err := dataplanetest.New(context.Background(), dataplanetest.Config{
		ConfigFile: filepath.Join(dir, "haproxy.cfg"), HAProxyBin: "haproxy",
		RuntimeSocket: filepath.Join(dir, "admin.sock"), MasterSocket: filepath.Join(dir, "master.sock"),
		TransactionsDir: filepath.Join(dir, "transactions-v3"), User: "admin", Password: s.password, Major: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(dp)
	t.Cleanup(api.Close)
	raw, err := os.ReadFile(s.configPath)
	if err != nil {
		t.Fatal(err)
	}
	v2URL := regexp.MustCompile(`(?m)^  url: http://127\.0\.0\.1:[0-9]+/v2$`)
	if !v2URL.Match(raw) {
		t.Fatalf("the stack's fridaymorning.yaml has no Data Plane API v2 url to replace:\n%s", raw)
	}
	raw = v2URL.ReplaceAll(raw, []byte("  url: "+api.URL+suffix))
	if err := os.WriteFile(s.configPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return s, dp
}

// TestReleaseThroughDataPlaneAPIv3Promotes: a healthy version is promoted through a v3 API found from
// a bare base URL, under load, with no failed request and no HAProxy reload (every weight write was a
// runtime change).
func TestReleaseThroughDataPlaneAPIv3Promotes(t *testing.T) {
	s, dp := v3Stack(t, "")
	stop := s.startLoad(100)
	time.Sleep(time.Second)
	code, out := s.release("--image", s.image+":v2")
	load := stop()
	if code != exitPromoted {
		t.Fatalf("exit %d, want %d (promoted)", code, exitPromoted)
	}
	for _, want := range []string{"event=traffic", "step=1/2 canary=10%", "result=pass", "outcome=promoted"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if w := s.weights(); w["canary1"] != 0 || w["stable1"] == 0 {
		t.Errorf("weights after promotion %v: want all on stable", w)
	}
	if n := dp.Reloads(); n != 0 {
		t.Errorf("the v3 API reloaded HAProxy %d times: weight writes must be runtime-only", n)
	}
	if cfg, _ := os.ReadFile(filepath.Join(filepath.Dir(s.configPath), "haproxy.cfg")); !strings.Contains(string(cfg), "canary1") {
		t.Errorf("configuration lost the canary server:\n%s", cfg)
	}
	t.Logf("load: %+v", load)
	if load.Failed != 0 {
		t.Errorf("%d of %d requests failed during the release (%v): want zero", load.Failed, load.Sent, load.Errors)
	}
	if load.ByVersion["v2"] == 0 || load.ByVersion["v1"] == 0 || load.Sent < 1000 {
		t.Errorf("load %+v: want steady traffic served by both versions", load)
	}
}

// TestReleaseThroughDataPlaneAPIv3Aborts: an erroring version is aborted through the v3 API, and
// traffic is back on stable.
func TestReleaseThroughDataPlaneAPIv3Aborts(t *testing.T) {
	s, _ := v3Stack(t, "/v3")
	stop := s.startLoad(100)
	time.Sleep(time.Second)
	code, out := s.release("--image", s.image+":v2-errors")
	load := stop()
	if code != exitAbortedAnalysis {
		t.Fatalf("exit %d, want %d (aborted by analysis)", code, exitAbortedAnalysis)
	}
	for _, want := range []string{"result=fail", "check=error_rate", "outcome=aborted-analysis"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if s.canaryExists() {
		t.Error("the canary service is still there after the abort")
	}
	if w := s.weights(); w["canary1"] != 0 || w["stable1"] == 0 {
		t.Errorf("weights after abort %v: want canary 0", w)
	}
	if load.ByVersion["v2-errors"] == 0 {
		t.Errorf("the canary served no requests (%+v): the abort was not judged on real traffic", load)
	}
	if load.ByVersion["v1"] == 0 {
		t.Errorf("stable served no requests (%+v)", load)
	}
}
