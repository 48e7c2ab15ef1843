//go:build integration

package haproxy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/haproxy"
)

// visitor is one browser: it keeps HAProxy's cohort cookie.
type visitor struct {
	hc    *http.Client
	first string
}

func newVisitor() *visitor {
	jar, _ := cookiejar.New(nil)
	return &visitor{hc: &http.Client{Jar: jar, Timeout: 5 * time.Second}}
}

func (v *visitor) get(t *testing.T, url string, header ...string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if len(header) == 2 {
		req.Header.Set(header[0], header[1])
	}
	resp, err := v.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// TestCohorts: with persistence on, visitors stay with the version they first got while the split moves
// on; new visitors follow the split; testers pin themselves with X-Canary; an abort (0%) moves the
// canary's visitors to stable at once, and the next release's canary takes new visitors again.
func TestCohorts(t *testing.T) {
	for _, way := range ways {
		t.Run(way, func(t *testing.T) {
			tp := newTopology(t, 1, 1, false, withCohorts)
			c := tp.by(t, way, func(c *haproxy.Config) { c.Cohorts = true }) // waits until both groups are up
			ctx := context.Background()
			if _, _, err := c.Shift(ctx, 25); err != nil {
				t.Fatal(err)
			}
			visitors := make([]*visitor, 400)
			onCanary := 0
			for i := range visitors {
				visitors[i] = newVisitor()
				visitors[i].first = visitors[i].get(t, tp.frontend)
				if visitors[i].first == "canary1" {
					onCanary++
				}
			}
			if onCanary < 80 || onCanary > 120 {
				t.Errorf("%d of 400 new visitors reached the canary at 25%%", onCanary)
			}
			if _, _, err := c.Shift(ctx, 50); err != nil {
				t.Fatal(err)
			}
			for _, v := range visitors {
				for range 3 {
					if got := v.get(t, tp.frontend); got != v.first {
						t.Fatalf("a visitor first served by %s flipped to %s", v.first, got)
					}
				}
			}
			newOnCanary := 0
			for range 200 {
				if newVisitor().get(t, tp.frontend) == "canary1" {
					newOnCanary++
				}
			}
			if newOnCanary < 80 || newOnCanary > 120 {
				t.Errorf("%d of 200 new visitors reached the canary at 50%%", newOnCanary)
			}
			for pin, want := range map[string]string{"always": "canary1", "never": "stable1"} {
				for range 20 {
					if got := newVisitor().get(t, tp.frontend, "X-Canary", pin); got != want {
						t.Fatalf("X-Canary: %s reached %s, want %s", pin, got, want)
					}
				}
			}

			// Abort: every visitor of the canary is on stable with its very next request.
			if _, _, err := c.Shift(ctx, 0); err != nil {
				t.Fatal(err)
			}
			for _, v := range visitors {
				if got := v.get(t, tp.frontend); got != "stable1" {
					t.Fatalf("after the abort a visitor first served by %s reached %s", v.first, got)
				}
			}
			if got := newVisitor().get(t, tp.frontend, "X-Canary", "always"); got != "stable1" {
				t.Fatalf("X-Canary: always reached %s with the canary out", got)
			}

			// The next release: the canary comes out of maintenance and takes new visitors again.
			wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			if err := c.WaitUp(wctx, "canary"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.Shift(ctx, 50); err != nil {
				t.Fatal(err)
			}
			back := 0
			for range 100 {
				if newVisitor().get(t, tp.frontend) == "canary1" {
					back++
				}
			}
			if back < 30 || back > 70 {
				t.Errorf("%d of 100 new visitors reached the canary at 50%% after it came back", back)
			}
		})
	}
}
