package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/headless"
	"github.com/fridaymorning/fridaymorning/internal/load"
	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/swarm"
)

// scenario is one rehearsed release with the outcome that keeps users safe.
type scenario struct {
	name, what string
	// tag is the demo image's tag to release.
	tag    string
	expect release.Outcome
	// fault is injected once the canary has traffic: "", faultMetricsDown or faultReload.
	fault string
}

const (
	faultMetricsDown = "metrics-down"
	faultReload      = "haproxy-reload"
)

// scenarios is the drill's catalogue.
var scenarios = []scenario{
	{"healthy", "a healthy release", "v2", release.OutcomePromoted, ""},
	{"5xx-burst", "half the canary's requests fail", "v2-errors", release.OutcomeAbortedAnalysis, ""},
	{"latency-regression", "the canary answers in 250 ms", "v2-slow", release.OutcomeAbortedAnalysis, ""},
	{"crash-loop", "the canary crashes at start", "v2-crash", release.OutcomeAbortedAnalysis, ""},
	{"failing-healthcheck", "the canary's healthcheck fails", "v2-unhealthy", release.OutcomeAbortedAnalysis, ""},
	{"metrics-down", "InfluxDB hangs once the canary has traffic", "v2", release.OutcomeAbortedInconclusive, faultMetricsDown},
	{"haproxy-reload", "HAProxy reloads once the canary has traffic", "v2", release.OutcomePromoted, faultReload},
}

// score is how one scenario went.
type score struct {
	scenario
	outcome  release.Outcome
	safe     bool
	why      string
	toSafe   time.Duration
	exposed  bool
	sent     int64
	failed   int64
	canaryOK int64
	took     time.Duration
}

// drillOptions are the drill command's flags.
type drillOptions struct {
	profile string
	rps     float64
	only    []string
}

func newDrillCmd(stdout io.Writer) *cobra.Command {
	var opts drillOptions
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Rehearse bad releases on the local test bed and print a scorecard",
		Long: `Rehearse releases on the local test bed (make testbed) under steady load: a healthy one, a 5xx burst,
a latency regression, a crash loop at start, a failing healthcheck, InfluxDB hanging mid-release and
HAProxy reloading mid-release. Each has its expected safe outcome; the scorecard shows the outcome, the
time from the canary's first traffic to traffic back on stable, and the requests users saw fail. The same
bad release then goes through Swarm's own rolling update (docker service update --update-failure-action
rollback) under the same load, for comparison. Exits 1 if any scenario ended unsafe.

Profiles: short (2 steps of 5 s, about 3 minutes in all) and full (3 steps of 30 s, about 10 minutes).
It needs the test bed's environment: . .testbed/<bed>/env (make drill does it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			return runDrill(cmd.Context(), opts, stdout)
		},
	}
	cmd.Flags().StringVar(&opts.profile, "profile", "short", "short or full")
	cmd.Flags().Float64Var(&opts.rps, "rps", 100, "steady load, requests per second")
	cmd.Flags().StringSliceVar(&opts.only, "only", nil, "run only these scenarios")
	return cmd
}

// bedVar reads a variable of the test bed's environment.
func bedVar(key string) (string, error) {
	v := os.Getenv(key)
	if v == "" {
		return "", fmt.Errorf("%s is not set: the drill runs on the local test bed; run make testbed, then . .testbed/fm/env (or make drill)", key)
	}
	return v, nil
}

// profiles are the drill's --profile values: each step's share and how long it bakes.
var profiles = map[string]struct {
	steps []float64
	bake  time.Duration
}{
	"short": {[]float64{10, 50}, 5 * time.Second},
	"full":  {[]float64{5, 25, 50}, 30 * time.Second},
}

func (o drillOptions) validate() error {
	if _, ok := profiles[o.profile]; !ok {
		return &exitErr{exitUsage, fmt.Errorf("--profile %q: want short or full", o.profile)}
	}
	return nil
}

// runDrill runs the scenarios opts ask for on the test bed and prints the scorecard.
func runDrill(ctx context.Context, opts drillOptions, stdout io.Writer) error {
	vars := map[string]string{}
	for _, k := range []string{"FM_BED_DIR", "FM_SERVICE", "FM_IMAGE_REPO", "FM_HAPROXY_PORT", "FM_HAPROXY_DIR"} {
		v, err := bedVar(k)
		if err != nil {
			return &exitErr{exitUsage, err}
		}
		vars[k] = v
	}
	fc, err := loadConfig(filepath.Join(vars["FM_BED_DIR"], "fridaymorning.yaml"), true)
	if err != nil {
		return &exitErr{exitError, err}
	}
	p := profiles[opts.profile]
	fc.Steps, fc.Bake = p.steps, duration(p.bake)
	// A hung InfluxDB should cost seconds, not the default ten per query.
	fc.InfluxDB.Timeout = duration(3 * time.Second)
	frontend := "http://127.0.0.1:" + vars["FM_HAPROXY_PORT"] + "/"
	repo, service := vars["FM_IMAGE_REPO"], vars["FM_SERVICE"]

	sw, err := fc.swarmClient()
	if err != nil {
		return err
	}
	defer sw.Close()
	out := headless.NewLogger(stdout)
	var scores []score
	for _, sc := range scenarios {
		if len(opts.only) > 0 && !slices.Contains(opts.only, sc.name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		out.Info(fmt.Sprintf("scenario %s: %s (expected: %s)", sc.name, sc.what, sc.expect), headless.KeyEvent, "drill", "scenario", sc.name)
		s, err := runScenario(ctx, fc, sw, sc, repo, service, frontend, vars["FM_BED_DIR"], vars["FM_HAPROXY_DIR"], opts.rps, stdout)
		if err != nil {
			return &exitErr{exitError, fmt.Errorf("drill scenario %s: %w", sc.name, err)}
		}
		scores = append(scores, s)
		out.Info(s.why, headless.KeyEvent, "scorecard", "scenario", s.name, "expected", string(s.expect), headless.KeyOutcome, string(s.outcome),
			"safe", s.safe, "time_to_safe", s.toSafeText(), "failed", s.failed, "sent", s.sent)
	}
	var swarmCmp *swarmComparison
	if len(opts.only) == 0 || slices.Contains(opts.only, "swarm-rollback") {
		window := 30 * time.Second
		for _, s := range scores {
			if s.name == "5xx-burst" {
				window = max(s.took, 15*time.Second)
			}
		}
		out.Info(fmt.Sprintf("the 5xx burst through Swarm's own rolling update (failure action rollback), watched for %s", window.Round(time.Second)), headless.KeyEvent, "drill", "scenario", "swarm-rollback")
		swarmCmp, err = compareSwarm(ctx, sw, repo, service, frontend, opts.rps, window)
		if err != nil {
			return &exitErr{exitError, fmt.Errorf("drill: Swarm's rolling update: %w", err)}
		}
	}
	printScorecard(stdout, scores, swarmCmp)
	for _, s := range scores {
		if !s.safe {
			return &exitErr{exitError, fmt.Errorf("drill: scenario %s ended unsafe: %s", s.name, s.why)}
		}
	}
	return nil
}

func (s score) toSafeText() string {
	switch {
	case s.expect == release.OutcomePromoted:
		return "—"
	case !s.exposed:
		return "never exposed"
	}
	return s.toSafe.Round(100 * time.Millisecond).String()
}

// resetDemo puts the demo service back on v1 and waits until it is ready.
func resetDemo(ctx context.Context, sw *swarm.Client, service, image string) error {
	cur, err := sw.Image(ctx, service)
	if err != nil {
		return err
	}
	if cur != image {
		if err := sw.UpdateImage(ctx, service, image); err != nil {
			return err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return sw.WaitReady(wctx, service, nil)
}

// steadyLoad sends rps requests a second to frontend, once it answers, until the returned stop is
// called; stop returns what the load saw.
func steadyLoad(ctx context.Context, frontend string, rps float64) (stop func() load.Summary, err error) {
	if err := waitServing(ctx, frontend, 30*time.Second); err != nil {
		return nil, err
	}
	loadCtx, cancel := context.WithCancel(ctx)
	loaded := make(chan load.Summary, 1)
	go func() { loaded <- load.Run(loadCtx, frontend, rps, 32, 5*time.Second, time.Hour, io.Discard) }()
	return func() load.Summary {
		cancel()
		return <-loaded
	}, nil
}

// waitServing polls frontend until it answers without a server error, for at most within: after the
// demo service was put back on v1, HAProxy's health checks take a moment to send it traffic again, and
// the load must measure the release, not that moment.
func waitServing(ctx context.Context, frontend string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	c := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, frontend, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
			err = fmt.Errorf("HTTP %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %s (last: %v): is the test bed's HAProxy up (make testbed)?", frontend, within, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func runScenario(ctx context.Context, fc *fileConfig, sw *swarm.Client, sc scenario, repo, service, frontend, bedDir, haproxyDir string, rps float64, stdout io.Writer) (score, error) {
	s := score{scenario: sc}
	if err := resetDemo(ctx, sw, service, repo+":v1"); err != nil {
		return s, fmt.Errorf("putting %s back on v1: %w", service, err)
	}
	stopLoad, err := steadyLoad(ctx, frontend, rps)
	if err != nil {
		return s, err
	}
	lines, err := headless.New(stdout, headless.Options{})
	if err != nil {
		stopLoad()
		return s, err
	}
	var mu sync.Mutex
	var firstTraffic, backOnStable time.Time
	exposed := make(chan struct{})
	var once sync.Once
	w, err := wire(fc, repo+":"+sc.tag, func(ev release.Event) {
		lines.Event(ev)
		if ev.Kind != release.KindTraffic {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case ev.CanaryPercent > 0 && ev.Phase == release.PhaseBaking && firstTraffic.IsZero():
			firstTraffic = ev.Time
			once.Do(func() { close(exposed) })
		case ev.CanaryPercent == 0 && ev.Phase == release.PhaseAborting && backOnStable.IsZero():
			backOnStable = ev.Time
		}
	})
	if err != nil {
		stopLoad()
		return s, err
	}
	defer w.Close()

	// The fault, once the canary has traffic; whatever happens, InfluxDB runs again at the end.
	faultDone := make(chan struct{})
	var resume func()
	go func() {
		defer close(faultDone)
		select {
		case <-exposed:
		case <-ctx.Done():
			return
		}
		switch sc.fault {
		case faultMetricsDown:
			resume = freezeInfluxDB(bedDir, stdout)
		case faultReload:
			reloadHAProxy(filepath.Join(haproxyDir, "master.sock"), stdout)
		}
	}()
	start := time.Now()
	outcome, runErr := w.engine.Run(ctx)
	s.took = time.Since(start)
	select {
	case <-faultDone:
	case <-time.After(5 * time.Second):
	}
	if resume != nil {
		resume()
	}
	sum := stopLoad()
	s.outcome, s.sent, s.failed = outcome, sum.Sent, sum.Failed
	s.canaryOK = sum.ByVersion[sc.tag]
	mu.Lock()
	s.exposed = !firstTraffic.IsZero()
	if s.exposed && !backOnStable.IsZero() {
		s.toSafe = backOnStable.Sub(firstTraffic)
	}
	mu.Unlock()

	// Safe: the expected outcome, and the service as it should be: on the new image after a promotion,
	// on v1 otherwise, no canary left behind, no release left open.
	s.safe, s.why = true, fmt.Sprintf("%s as expected", outcome)
	want := repo + ":v1"
	if sc.expect == release.OutcomePromoted {
		want = repo + ":" + sc.tag
	}
	img, err := sw.Released(ctx, service)
	rec, recErr := release.Load(ctx, sw, service)
	canaryLeft, _ := sw.Tasks(ctx, swarm.CanaryName(service))
	switch {
	case outcome != sc.expect:
		s.safe, s.why = false, fmt.Sprintf("ended %s, expected %s", outcome, sc.expect)
		if runErr != nil {
			s.why += ": " + runErr.Error()
		}
	case err != nil || img != want:
		s.safe, s.why = false, fmt.Sprintf("%s runs %s, want %s (%v)", service, img, want, err)
	case recErr != nil || rec.Active():
		s.safe, s.why = false, "the release record was left active"
	case canaryLeft != "":
		s.safe, s.why = false, "the canary service was left behind"
	}
	return s, nil
}

// freezeInfluxDB stops the bed's InfluxDB (SIGSTOP: it hangs, as an overloaded or partitioned store
// does) and returns the function that lets it go on.
func freezeInfluxDB(bedDir string, stdout io.Writer) func() {
	raw, err := os.ReadFile(filepath.Join(bedDir, "influxdb", "influxd.pid"))
	pid, perr := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || perr != nil {
		fmt.Fprintf(stdout, "drill: cannot find InfluxDB's pid (%v %v): the metrics-down fault is not injected\n", err, perr)
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		fmt.Fprintf(stdout, "drill: stopping InfluxDB (pid %d): %v\n", pid, err)
		return nil
	}
	fmt.Fprintf(stdout, "drill: InfluxDB (pid %d) hangs from now on\n", pid)
	return func() {
		_ = syscall.Kill(pid, syscall.SIGCONT)
		fmt.Fprintf(stdout, "drill: InfluxDB (pid %d) runs again\n", pid)
	}
}

// reloadHAProxy asks the bed's HAProxy master to reload (a new worker takes over, as on a config change).
func reloadHAProxy(masterSocket string, stdout io.Writer) {
	conn, err := net.DialTimeout("unix", masterSocket, 2*time.Second)
	if err != nil {
		fmt.Fprintf(stdout, "drill: reloading HAProxy: %v\n", err)
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("reload\n")); err != nil {
		fmt.Fprintf(stdout, "drill: reloading HAProxy: %v\n", err)
		return
	}
	_, _ = io.ReadAll(conn)
	fmt.Fprintln(stdout, "drill: HAProxy reloaded")
}

// swarmComparison is the bad release through Swarm's own rolling update.
type swarmComparison struct {
	window     time.Duration
	sent       int64
	failed     int64
	rolledBack bool
	state      string
}

// compareSwarm releases v2-errors to the demo service with docker service update's rollback on failure,
// under the same load, watches it for window, and puts the service back on v1.
func compareSwarm(ctx context.Context, sw *swarm.Client, repo, service, frontend string, rps float64, window time.Duration) (*swarmComparison, error) {
	if err := resetDemo(ctx, sw, service, repo+":v1"); err != nil {
		return nil, err
	}
	stopLoad, err := steadyLoad(ctx, frontend, rps)
	if err != nil {
		return nil, err
	}
	if err := sw.UpdateWithRollback(ctx, service, repo+":v2-errors", 5*time.Second); err != nil {
		stopLoad()
		return nil, err
	}
	select {
	case <-time.After(window):
	case <-ctx.Done():
	}
	sum := stopLoad()
	c := &swarmComparison{window: window, sent: sum.Sent, failed: sum.Failed}
	if state, err := sw.UpdateState(ctx, service); err == nil {
		c.state = state
		c.rolledBack = strings.HasPrefix(state, "rollback")
	}
	if err := resetDemo(context.WithoutCancel(ctx), sw, service, repo+":v1"); err != nil && !errors.Is(err, context.Canceled) {
		return c, fmt.Errorf("putting %s back on v1: %w", service, err)
	}
	return c, nil
}

func printScorecard(w io.Writer, scores []score, cmp *swarmComparison) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "fridaymorning drill — scorecard")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\texpected\toutcome\tsafe\ttime to safe\tfailed requests\t")
	for _, s := range scores {
		safe := "✓"
		if !s.safe {
			safe = "✗ " + s.why
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d of %d\t\n", s.name, s.expect, s.outcome, safe, s.toSafeText(), s.failed, s.sent)
	}
	_ = tw.Flush()
	if cmp == nil {
		return
	}
	var fm *score
	for i := range scores {
		if scores[i].name == "5xx-burst" {
			fm = &scores[i]
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "the same bad release (half of its requests fail), two ways:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tfailed requests\tshare\tback on the old version\t")
	if fm != nil {
		fmt.Fprintf(tw, "fridaymorning\t%d of %d\t%.1f%%\tafter %s (traffic back on stable)\t\n", fm.failed, fm.sent, pctOf(fm.failed, fm.sent), fm.toSafeText())
	}
	back := "no: Swarm judges task health only, and these tasks are healthy (update " + orText(cmp.state, "completed") + ")"
	if cmp.rolledBack {
		back = "rolled back (" + cmp.state + ")"
	}
	fmt.Fprintf(tw, "docker service update --update-failure-action rollback\t%d of %d\t%.1f%%\t%s, watched for %s\t\n", cmp.failed, cmp.sent, pctOf(cmp.failed, cmp.sent), back, cmp.window.Round(time.Second))
	_ = tw.Flush()
}

func pctOf(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
