package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/verdict"
)

// receiver is a local HTTP server that records what it is sent, answering status.
type receiver struct {
	mu     sync.Mutex
	bodies []string
	paths  []string
	status int
	hang   chan struct{}
	srv    *httptest.Server
}

func newReceiver(t *testing.T, status int) *receiver {
	r := &receiver{status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.hang != nil {
			select {
			case <-r.hang:
			case <-req.Context().Done():
			}
		}
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		r.paths = append(r.paths, req.URL.Path)
		r.mu.Unlock()
		w.WriteHeader(r.status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

// aRelease is the events of a release that passes a step, then is aborted at the next one.
func aRelease() []release.Event {
	base := release.Event{ReleaseID: "r1", Service: "shop", Image: "registry.example/shop:v2", StableImage: "registry.example/shop:v1", Steps: 2, StartedBy: "alice"}
	with := func(f func(*release.Event)) release.Event { e := base; e.Time = time.Now(); f(&e); return e }
	return []release.Event{
		with(func(e *release.Event) { e.Kind = release.KindStarted }),
		with(func(e *release.Event) { e.Kind = release.KindProgress; e.Message = "canary 1/1 running" }),
		with(func(e *release.Event) {
			e.Kind, e.Step, e.CanaryPercent, e.AchievedPercent = release.KindTraffic, 1, 10, 10
		}),
		with(func(e *release.Event) {
			e.Kind, e.Step = release.KindLook, 1
			e.Verdict = &verdict.Verdict{Result: verdict.ResultInconclusive, Early: true}
		}),
		with(func(e *release.Event) {
			e.Kind, e.Step = release.KindAnalysis, 1
			e.Verdict = &verdict.Verdict{Result: verdict.ResultPass, Reason: "all 10 checks pass"}
		}),
		with(func(e *release.Event) {
			e.Kind, e.Step = release.KindAnalysis, 2
			e.Verdict = &verdict.Verdict{Result: verdict.ResultFail, Reason: "canary error rate 48% > 1%"}
		}),
		with(func(e *release.Event) {
			e.Kind, e.Outcome, e.Message = release.KindFinished, release.OutcomeAbortedAnalysis, "step 2 failed: canary error rate 48% > 1%"
		}),
	}
}

// TestWebhookAndSlack: a webhook gets every milestone as JSON, in order; a Slack-compatible target gets
// short human messages for the milestones it asked for.
func TestWebhookAndSlack(t *testing.T) {
	hook, slack := newReceiver(t, 200), newReceiver(t, 200)
	n, err := New([]Target{
		{Name: "hook", Kind: KindWebhook, URL: hook.srv.URL + "/hook/s3cret-token"},
		{Name: "chat", Kind: KindSlack, URL: slack.srv.URL + "/services/T/B/s3cret", Events: []string{EventAborted, EventPromoted}},
	}, func(w string) { t.Errorf("warning: %s", w) })
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range aRelease() {
		n.Event(ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.Close(ctx)

	var events []string
	for _, b := range hook.got() {
		var m Message
		if err := json.Unmarshal([]byte(b), &m); err != nil {
			t.Fatalf("webhook body %q: %v", b, err)
		}
		if m.Release != "r1" || m.Service != "shop" || m.Text == "" {
			t.Errorf("webhook message %+v", m)
		}
		events = append(events, m.Event)
	}
	if got := strings.Join(events, ","); got != "started,traffic,verdict,verdict,aborted" {
		t.Errorf("webhook events %s", got)
	}
	msgs := slack.got()
	if len(msgs) != 1 {
		t.Fatalf("slack got %d messages, want the abort only: %q", len(msgs), msgs)
	}
	var sm map[string]string
	if err := json.Unmarshal([]byte(msgs[0]), &sm); err != nil || len(sm) != 1 ||
		!strings.Contains(sm["text"], "shop shop:v2 aborted") || !strings.Contains(sm["text"], "canary error rate 48%") {
		t.Errorf("slack message %q (%v)", msgs[0], err)
	}
}

// TestFailingReceiversNeverBlock: a receiver that fails is retried, then given up with a warning that
// names the target, never its URL; one that hangs costs Event nothing, and Close no more than its
// deadline.
func TestFailingReceiversNeverBlock(t *testing.T) {
	failing, hanging := newReceiver(t, 500), newReceiver(t, 200)
	hanging.hang = make(chan struct{})
	defer close(hanging.hang)
	var mu sync.Mutex
	var warnings []string
	n, err := New([]Target{
		{Name: "broken", Kind: KindWebhook, URL: failing.srv.URL + "/x/s3cret-token", Retries: 1, Events: []string{EventStarted}},
		{Name: "slow", Kind: KindSlack, URL: hanging.srv.URL + "/y/s3cret-token", Timeout: 30 * time.Second},
	}, func(w string) { mu.Lock(); warnings = append(warnings, w); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	// Far more events than a queue holds: Event must return at once every time.
	start := time.Now()
	for range 20 {
		for _, ev := range aRelease() {
			n.Event(ev)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Event blocked for %s", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	n.Close(ctx)

	if got := len(failing.got()); got < 2 {
		t.Errorf("the failing receiver was tried %d times, want each notification retried", got)
	}
	mu.Lock()
	defer mu.Unlock()
	var sawBroken, sawDropped bool
	for _, w := range warnings {
		if strings.Contains(w, "s3cret") {
			t.Errorf("a warning shows the URL's secret: %s", w)
		}
		sawBroken = sawBroken || strings.Contains(w, "target broken") && strings.Contains(w, "HTTP 500")
		sawDropped = sawDropped || strings.Contains(w, "target slow is too slow")
	}
	if !sawBroken || !sawDropped {
		t.Errorf("warnings %q: want the failing target named with its status, and the slow one's drops", warnings)
	}
}

// TestTargetsAreChecked: bad targets are refused with what to fix, and never with their URL.
func TestTargetsAreChecked(t *testing.T) {
	for _, c := range []struct {
		t    Target
		want string
	}{
		{Target{Kind: KindWebhook, URL: "https://h/x"}, "no name"},
		{Target{Name: "a", Kind: "email", URL: "https://h/x"}, `kind "email"`},
		{Target{Name: "a", Kind: KindSlack, URL: "ftp://h/s3cret"}, "url_env or url_file"},
		{Target{Name: "a", Kind: KindSlack, URL: "https://h/s3cret", Events: []string{"begun"}}, `unknown event "begun"`},
	} {
		_, err := New([]Target{c.t}, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%+v: %v, want %q", c.t, err, c.want)
		}
	}
}
