// Package notify tells people and systems about a release as it happens: each milestone (started, every
// traffic change, each step's verdict, paused at the gate, promoted, aborted with its reason, rolled back)
// goes to a generic JSON webhook, or as a short human message to a Slack-compatible incoming webhook
// (Slack itself, Mattermost, Rocket.Chat, Discord's /slack endpoint).
//
// Notifications never hold a release up: events are queued per target and sent by a goroutine of its
// own, with a timeout and retries; a receiver that fails or hangs loses its notifications (counted and
// reported through the warn callback), never the release's time. Webhook URLs carry secrets: they are
// never printed, and errors name a target by its name and host only.
//
// Like the other front ends, it only reads the release engine's events; it imports release and nothing
// else of fridaymorning.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fridaymorning/fridaymorning/internal/webhook"
	"github.com/fridaymorning/fridaymorning/release"
)

// The kinds of targets.
const (
	// KindWebhook receives each milestone as a JSON Message.
	KindWebhook = "webhook"
	// KindSlack receives {"text": "…"}, a one-line human message: what Slack's incoming webhooks and the
	// Slack-compatible endpoints of Mattermost, Rocket.Chat and Discord take.
	KindSlack = "slack"
)

// The milestones a target can subscribe to.
const (
	EventStarted    = "started"
	EventTraffic    = "traffic"
	EventVerdict    = "verdict"
	EventPaused     = "paused"
	EventPromoted   = "promoted"
	EventAborted    = "aborted"
	EventRolledBack = "rolled-back"
	EventFailed     = "failed"
)

// Events lists every milestone, in the order a release reaches them.
var Events = []string{EventStarted, EventTraffic, EventVerdict, EventPaused, EventPromoted, EventAborted, EventRolledBack, EventFailed}

// Defaults of Target.
const (
	DefaultTimeout = 5 * time.Second
	DefaultRetries = 2
	// queueSize is how many notifications wait for a slow target before new ones are dropped.
	queueSize = 64
)

// Target is one receiver.
type Target struct {
	// Name names the target in messages ("team-chat"); never its URL.
	Name string
	// Kind is KindWebhook or KindSlack.
	Kind string
	// URL is where to POST. It usually holds a secret: it is never printed.
	URL string
	// Events are the milestones to send (nil: all of them).
	Events []string
	// Timeout bounds each attempt (default 5s); Retries is how many more attempts follow a failed one
	// (default 2, negative for none), with a growing pause between them.
	Timeout time.Duration
	Retries int
	// Headers are added to each request (an Authorization header, say).
	Headers map[string]string
}

// Validate says what is wrong with t, naming the target but never its URL's secret parts.
func (t Target) Validate() error {
	if t.Name == "" {
		return errors.New("notify: a target has no name: give each entry of notify: a name")
	}
	switch t.Kind {
	case KindWebhook, KindSlack:
	default:
		return fmt.Errorf("notify: target %s: kind %q: want webhook or slack", t.Name, t.Kind)
	}
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("notify: target %s: its URL is no http(s) URL: set it through url_env or url_file", t.Name)
	}
	for _, e := range t.Events {
		if !slices.Contains(Events, e) {
			return fmt.Errorf("notify: target %s: unknown event %q: want some of %s", t.Name, e, strings.Join(Events, ", "))
		}
	}
	return nil
}

// Message is what a webhook target receives for each milestone, as JSON.
type Message struct {
	Event     string    `json:"event"`
	Time      time.Time `json:"time"`
	Release   string    `json:"release"`
	Service   string    `json:"service"`
	Image     string    `json:"image"`
	Stable    string    `json:"stable_image,omitempty"`
	Phase     string    `json:"phase"`
	Step      int       `json:"step,omitempty"`
	Steps     int       `json:"steps,omitempty"`
	Canary    float64   `json:"canary_percent"`
	Requested float64   `json:"requested_percent,omitempty"`
	Result    string    `json:"result,omitempty"`
	Outcome   string    `json:"outcome,omitempty"`
	Text      string    `json:"text"`
	Message   string    `json:"message,omitempty"`
	StartedBy string    `json:"started_by,omitempty"`
}

// Milestone turns an engine event into the milestone it is, if any: early looks, progress and the like
// are no milestones.
func Milestone(ev release.Event) (Message, bool) {
	m := Message{Time: ev.Time, Release: ev.ReleaseID, Service: ev.Service, Image: ev.Image, Stable: ev.StableImage,
		Phase: string(ev.Phase), Step: ev.Step, Steps: ev.Steps, Canary: ev.AchievedPercent, Message: ev.Message, StartedBy: ev.StartedBy}
	who := ev.Service + " " + shortImage(ev.Image)
	switch ev.Kind {
	case release.KindStarted:
		m.Event = EventStarted
		m.Text = fmt.Sprintf("fridaymorning: releasing %s (%s, %d steps), started by %s", who, ev.ReleaseID, ev.Steps, orUnknown(ev.StartedBy))
	case release.KindTraffic:
		m.Event, m.Requested = EventTraffic, ev.CanaryPercent
		m.Text = fmt.Sprintf("fridaymorning: %s: canary gets %s%% of requests", who, release.FormatPercent(ev.AchievedPercent))
	case release.KindAnalysis:
		if ev.Verdict == nil {
			return Message{}, false
		}
		m.Event, m.Result, m.Canary = EventVerdict, string(ev.Verdict.Result), ev.CanaryPercent
		m.Text = fmt.Sprintf("fridaymorning: %s step %d/%d %s: %s", who, ev.Step, ev.Steps, ev.Verdict.Result, ev.Verdict.Reason)
	case release.KindFinished:
		m.Outcome = string(ev.Outcome)
		switch ev.Outcome {
		case release.OutcomePromoted:
			m.Event = EventPromoted
			m.Text = fmt.Sprintf("fridaymorning: %s promoted: %s", who, ev.Message)
		case release.OutcomePaused:
			m.Event = EventPaused
			m.Text = fmt.Sprintf("fridaymorning: %s paused: %s", who, ev.Message)
		case release.OutcomeRolledBack:
			m.Event = EventRolledBack
			m.Text = fmt.Sprintf("fridaymorning: %s rolled back: %s", who, ev.Message)
		case release.OutcomeFailed:
			m.Event = EventFailed
			m.Text = fmt.Sprintf("fridaymorning: %s failed: %s", who, ev.Message)
		default:
			m.Event = EventAborted
			m.Text = fmt.Sprintf("fridaymorning: %s aborted (%s): %s", who, ev.Outcome, ev.Message)
		}
	default:
		return Message{}, false
	}
	return m, true
}

// Notifier sends milestones to its targets, each from a queue of its own.
type Notifier struct {
	targets []*sender
	wg      sync.WaitGroup
	once    sync.Once
}

// New checks the targets and starts one sender for each. warn, if set, hears of notifications that
// failed or were dropped (it must not block); it never sees a URL.
func New(targets []Target, warn func(string)) (*Notifier, error) {
	if warn == nil {
		warn = func(string) {}
	}
	n := &Notifier{}
	client := &http.Client{}
	for _, t := range targets {
		if err := t.Validate(); err != nil {
			return nil, err
		}
		if t.Timeout <= 0 {
			t.Timeout = DefaultTimeout
		}
		if t.Retries == 0 {
			t.Retries = DefaultRetries
		} else if t.Retries < 0 {
			t.Retries = 0
		}
		s := &sender{t: t, client: client, queue: make(chan Message, queueSize), warn: warn, done: make(chan struct{})}
		n.targets = append(n.targets, s)
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			s.run()
		}()
	}
	return n, nil
}

// Event hands ev to every target that wants its milestone. It never blocks: a target whose queue is full
// drops the notification and says so.
func (n *Notifier) Event(ev release.Event) {
	m, ok := Milestone(ev)
	if !ok {
		return
	}
	for _, s := range n.targets {
		if len(s.t.Events) > 0 && !slices.Contains(s.t.Events, m.Event) {
			continue
		}
		select {
		case s.queue <- m:
		default:
			s.warn(fmt.Sprintf("notify: target %s is too slow: dropped the %s notification", s.t.Name, m.Event))
		}
	}
}

// Close sends what is queued, waiting at most until ctx ends; what is left is dropped. Event must not be
// called after Close.
func (n *Notifier) Close(ctx context.Context) {
	n.once.Do(func() {
		for _, s := range n.targets {
			close(s.queue)
		}
	})
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, s := range n.targets {
			s.abandon()
		}
	}
}

// sender delivers one target's notifications in order.
type sender struct {
	t         Target
	client    *http.Client
	queue     chan Message
	warn      func(string)
	done      chan struct{}
	closeOnce sync.Once
}

func (s *sender) abandon() { s.closeOnce.Do(func() { close(s.done) }) }

func (s *sender) run() {
	for m := range s.queue {
		select {
		case <-s.done:
			continue // abandoned: drain without sending
		default:
		}
		if err := s.deliver(m); err != nil {
			s.warn(fmt.Sprintf("notify: target %s: the %s notification was not delivered: %v", s.t.Name, m.Event, err))
		}
	}
}

// deliver posts m, retrying with a growing pause; it gives up early when the sender is abandoned.
func (s *sender) deliver(m Message) error {
	body, err := s.body(m)
	if err != nil {
		return err
	}
	var last error
	for attempt := 0; attempt <= s.t.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-s.done:
				return last
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			}
		}
		if last = s.post(body); last == nil {
			return nil
		}
	}
	return fmt.Errorf("%w (after %d attempts)", last, s.t.Retries+1)
}

func (s *sender) body(m Message) ([]byte, error) {
	if s.t.Kind == KindSlack {
		return json.Marshal(map[string]string{"text": m.Text})
	}
	return json.Marshal(m)
}

func (s *sender) post(body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.t.Timeout)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	status, _, err := webhook.Post(ctx, s.client, s.t.URL, s.t.Headers, body)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return fmt.Errorf("POST to %s: HTTP %d", webhook.Host(s.t.URL), status)
	}
	return nil
}

func shortImage(img string) string {
	if i := strings.LastIndex(img, "/"); i >= 0 {
		img = img[i+1:]
	}
	return img
}

func orUnknown(s string) string {
	if s == "" {
		return "someone"
	}
	return s
}
