package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/fridaymorning/fridaymorning/analysis"
	"github.com/fridaymorning/fridaymorning/haproxy"
	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/swarm"
	"github.com/fridaymorning/fridaymorning/verdict"
)

// The adapters satisfy the engine's interfaces.
var (
	_ release.Canaries    = (*swarm.Client)(nil)
	_ release.Rollout     = (*swarm.Client)(nil)
	_ release.Router      = (*haproxy.Client)(nil)
	_ release.Router      = (*taskRouter)(nil)
	_ release.UpExplainer = (*taskRouter)(nil)
	_ release.Analyzer    = (*analysis.Analyzer)(nil)
	_ release.Journal     = (*swarm.Client)(nil)
	_ release.Pulse       = (*swarm.Client)(nil)
	_ release.Counter     = counter{}
	_ release.Verifier    = (*haproxy.Client)(nil)
	// The swarm client also keeps a copy of the record on the canary, puts a service's update policy
	// back after a promotion, knows a service's stack and locks backends.
	_ release.Mirror         = (*swarm.Client)(nil)
	_ release.PolicyRestorer = (*swarm.Client)(nil)
	_ release.Stacks         = (*swarm.Client)(nil)
	_ release.BackendLock    = (*swarm.Client)(nil)
)

// wired is a release engine with the adapters it needs closed afterwards.
type wired struct {
	engine  *release.Engine
	sw      *swarm.Client
	hp      *haproxy.Client
	store   analysis.Store
	service string
	closers []func()
}

// Close releases the adapters' connections.
func (w *wired) Close() {
	for _, c := range w.closers {
		c()
	}
}

// wire builds each package's Config from fc, the adapters, and the engine. It does no I/O: reachability
// and the release's inputs are checked by the engine's preflight, before anything changes.
func wire(fc *fileConfig, image string, emit func(release.Event)) (*wired, error) {
	if err := fc.checkRequired(); err != nil {
		return nil, err
	}
	ports, err := parsePorts(fc.Canary.Ports)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	password, err := secret(envDataplanePassword, fc.HAProxy.PasswordFile, "haproxy password")
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	token, err := secret(envInfluxToken, fc.InfluxDB.TokenFile, "influxdb token")
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}

	target, err := fc.stackTarget()
	if err != nil {
		return nil, err
	}
	sw, err := swarm.New(swarm.Config{Host: fc.Docker.Host, CanaryPorts: ports, CanaryReplicas: fc.Canary.Replicas, Spec: target})
	if err != nil {
		return nil, err
	}
	check := release.Preflight{Name: "swarm", Run: func(ctx context.Context) error { return sw.CheckRelease(ctx, fc.Service, image) }}
	if target != nil {
		image, check = target.Spec.TaskTemplate.ContainerSpec.Image, reviewStack(sw, fc.Service)
	}
	w := &wired{sw: sw, service: fc.Service, closers: []func(){func() { _ = sw.Close() }}}
	hp, err := haproxy.New(haproxy.Config{
		Mode: fc.HAProxy.Mode, RuntimeSocket: fc.HAProxy.RuntimeSocket, CAFile: fc.HAProxy.CAFile,
		URL: fc.HAProxy.URL, User: fc.HAProxy.User, Password: password, Backend: fc.HAProxy.Backend,
		StableServers: fc.HAProxy.StableServers, CanaryServers: fc.HAProxy.CanaryServers,
		BaseWeight: fc.HAProxy.BaseWeight, Timeout: fc.HAProxy.Timeout.D(), Cohorts: fc.HAProxy.Cohorts,
	})
	if err != nil {
		w.Close()
		return nil, err
	}
	statuses := analysis.DefaultErrorStatuses
	if len(fc.Analysis.ErrorStatuses) > 0 {
		if statuses, err = analysis.ParseStatuses(fc.Analysis.ErrorStatuses); err != nil {
			w.Close()
			return nil, fmt.Errorf("%w: fix analysis.error_statuses in fridaymorning.yaml", err)
		}
	}
	th, err := thresholds(fc)
	if err != nil {
		w.Close()
		return nil, err
	}
	store, err := analysis.New(analysis.Config{
		Language: fc.InfluxDB.Language,
		URL:      fc.InfluxDB.URL, Token: token, Org: fc.InfluxDB.Org, Bucket: fc.InfluxDB.Bucket,
		Measurement: fc.InfluxDB.Measurement, Backend: fc.HAProxy.Backend,
		StableServers: fc.HAProxy.StableServers, CanaryServers: fc.HAProxy.CanaryServers,
		Timer: fc.InfluxDB.Timer, Timeout: fc.InfluxDB.Timeout.D(), ErrorStatuses: statuses,
	})
	if err != nil {
		w.Close()
		return nil, err
	}
	w.closers = append(w.closers, store.Close)
	w.hp, w.store = hp, store
	prom, err := prometheus(fc)
	if err != nil {
		w.Close()
		return nil, err
	}
	gateList, err := gates(fc)
	if err != nil {
		w.Close()
		return nil, err
	}
	emit, err = withHooks(w, fc, emit)
	if err != nil {
		w.Close()
		return nil, err
	}
	analyzer := analysis.NewAnalyzer(store, th)
	preflight := []release.Preflight{
		check,
		{Name: "haproxy", Run: hp.Check},
		{Name: "haproxy weights", Run: func(ctx context.Context) error { return weightsAgree(ctx, hp) }},
		{Name: "servers", Run: func(ctx context.Context) error { return checkServers(ctx, sw, hp, fc.Service) }},
		{Name: "influxdb", Run: store.Ping},
	}
	if prom != nil {
		analyzer = analyzer.WithPrometheus(prom)
		preflight = append(preflight, release.Preflight{Name: "prometheus", Run: prom.Ping})
	}

	engine, err := release.New(release.Config{
		ReleaseID:          release.NewID(time.Now()),
		Service:            fc.Service,
		Backend:            fc.backendKey(),
		Image:              image,
		Target:             sw.SpecTarget(),
		Steps:              fc.steps(),
		Bake:               fc.bake(),
		AnalysisDelay:      fc.Analysis.Delay.D(),
		MaxExtensions:      maxExtensions(fc.Analysis.MaxExtensions),
		OnInconclusive:     fc.Analysis.OnInconclusive,
		EarlyInterval:      fc.Analysis.EarlyInterval.D(),
		EarlyPass:          fc.Analysis.EarlyPass,
		MinBake:            fc.Analysis.MinBake.D(),
		ReadyTimeout:       fc.Canary.ReadyTimeout.D(),
		FixedCanaryScale:   fc.Canary.Scale == "fixed",
		PromoteTimeout:     fc.Promote.Timeout.D(),
		DrainTimeout:       fc.HAProxy.DrainTimeout.D(),
		StartedBy:          startedBy(),
		BeatInterval:       fc.State.Heartbeat.D(),
		StaleAfter:         fc.staleAfter(),
		Standby:            fc.Promote.Standby.D(),
		PauseBeforePromote: fc.Promote.PauseBefore,
		WatchAtGate:        fc.Promote.WatchAtGate,
		MetricsStore:       fc.metricsStoreName(prom != nil),
		LoadBalancer:       fc.loadBalancerName(),
	}, release.Deps{
		Canaries:  sw,
		Rollout:   sw,
		Router:    &taskRouter{Client: hp, sw: sw, service: fc.Service, poll: 250 * time.Millisecond},
		Journal:   sw,
		Pulse:     sw,
		Counter:   counter{hp},
		Verifier:  hp,
		Analyzer:  analyzer,
		Gates:     gateList,
		Preflight: preflight,
		Lock:      sw,
	}, annotated(w, store, fc, emit))
	if err != nil {
		w.Close()
		return nil, err
	}
	w.engine = engine
	return w, nil
}

// startedBy says who runs fridaymorning, for the release record: the GitLab user and job in CI, else
// user@host.
func startedBy() string {
	if u := os.Getenv("GITLAB_USER_LOGIN"); u != "" {
		if job := os.Getenv("CI_JOB_URL"); job != "" {
			return u + " (" + job + ")"
		}
		return u + " (GitLab CI)"
	}
	name := os.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		} else {
			name = "unknown"
		}
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// maxExtensions maps analysis.max_extensions to the engine's convention: unset is the default, 0 is none.
func maxExtensions(p *int) int {
	switch {
	case p == nil:
		return 0
	case *p <= 0:
		return -1
	}
	return *p
}

// thresholds are the analysis settings of fc over the defaults, checked.
func thresholds(fc *fileConfig) (analysis.Thresholds, error) {
	a := fc.Analysis
	for _, p := range []struct {
		key string
		v   *float64
	}{{"max_error_rate", a.MaxErrorRate}, {"max_error_rate_increase", a.MaxErrorRateIncrease}, {"max_telemetry_gap", a.MaxTelemetryGap}} {
		if p.v != nil && !(*p.v >= 0 && *p.v <= 100) {
			return analysis.Thresholds{}, fmt.Errorf("config: analysis.%s is %g: want a percentage between 0 and 100", p.key, *p.v)
		}
	}
	if r := a.MaxLatencyRatio; r != nil && !(*r > 0) {
		return analysis.Thresholds{}, fmt.Errorf("config: analysis.max_latency_ratio is %g: want a ratio above 0, such as 1.25", *r)
	}
	if a.MinRequests < 0 || a.MinRequestsToFail < 0 {
		return analysis.Thresholds{}, fmt.Errorf("config: analysis.min_requests and min_requests_to_fail cannot be negative")
	}
	th := analysis.DefaultThresholds()
	if a.MinRequests != 0 {
		th.MinRequests = a.MinRequests
	}
	if a.Confidence != 0 {
		th.Confidence = a.Confidence
	}
	setIf(&th.MaxErrorRate, a.MaxErrorRate)
	setIf(&th.MaxErrorRateIncrease, a.MaxErrorRateIncrease)
	setIf(&th.MaxLatencyRatio, a.MaxLatencyRatio)
	setIf(&th.MaxTelemetryGap, a.MaxTelemetryGap)
	setIf(&th.MaxShareGap, a.MaxShareGap)
	th.MaxP50, th.MaxP90, th.MaxP95, th.MaxP99 = a.MaxP50.D(), a.MaxP90.D(), a.MaxP95.D(), a.MaxP99.D()
	if a.LatencySlack != 0 {
		th.LatencySlack = a.LatencySlack.D()
	}
	if a.MinRequestsToFail != 0 {
		th.MinRequestsToFail = a.MinRequestsToFail
	}
	th.FixedSample = a.Sequential != nil && !*a.Sequential
	for _, c := range a.Custom {
		th.Custom = append(th.Custom, analysis.CustomMetric{Name: c.Name, Source: c.Source, Query: c.Query, Unit: c.Unit, Max: c.Max, Min: c.Min, MaxRatio: c.MaxRatio})
	}
	return th, th.Validate()
}

// setIf sets *dst to *v if the file has v.
func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// weightsAgree is the preflight that names servers whose runtime weight differs from their configured
// one (a `set weight` by hand on the admin socket): a notice, since the release sets the runtime
// weights it needs.
func weightsAgree(ctx context.Context, hp *haproxy.Client) error {
	off, err := hp.WeightsDisagree(ctx)
	if err != nil || len(off) == 0 {
		return err
	}
	return release.Notice(fmt.Sprintf("HAProxy runs weights its configuration does not have (set by hand on the admin socket?): %s; the release sets the runtime weights each step needs, and they replace these",
		strings.Join(off, "; ")))
}

// counter adapts the HAProxy client's counters to release.Counter.
type counter struct{ hp *haproxy.Client }

func (c counter) Counts(ctx context.Context) (map[string]verdict.Tally, error) {
	got, err := c.hp.Counts(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]verdict.Tally, len(got))
	for g, t := range got {
		out[g] = verdict.Tally{Requests: t.Requests, Errors5xx: t.Errors5xx, Failed: t.Failed}
	}
	return out, nil
}

// annotated returns emit, also writing the release's milestones to InfluxDB (measurement
// fridaymorning_event) for dashboards, unless influxdb.annotations is false. Writes are best effort and
// never hold the release up: they go through a queue that drops when full, and Close waits briefly for
// it to drain.
func annotated(w *wired, store analysis.Store, fc *fileConfig, emit func(release.Event)) func(release.Event) {
	if fc.InfluxDB.Annotations != nil && !*fc.InfluxDB.Annotations {
		return emit
	}
	queue := make(chan analysis.Annotation, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for a := range queue {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_ = store.Annotate(ctx, a)
			cancel()
		}
	}()
	var once sync.Once
	// Closers run in order: this one before the store's Close, which follows in w.closers.
	w.closers = append([]func(){func() {
		once.Do(func() { close(queue) })
		select {
		case <-done:
		case <-time.After(3 * time.Second):
		}
	}}, w.closers...)
	return func(ev release.Event) {
		emit(ev)
		switch ev.Kind {
		case release.KindStarted, release.KindTraffic, release.KindPhase, release.KindControl, release.KindFinished, release.KindAnalysis:
		default:
			return
		}
		a := analysis.Annotation{At: ev.Time, Release: ev.ReleaseID, Service: ev.Service, Kind: string(ev.Kind), Phase: string(ev.Phase),
			Text: ev.Message, CanaryPercent: ev.AchievedPercent}
		if ev.Kind != release.KindTraffic {
			a.CanaryPercent = ev.CanaryPercent
		}
		select {
		case queue <- a:
		default:
		}
	}
}

// metricsStoreName names the metrics store (and Prometheus, if custom checks ask it) for messages.
func (fc *fileConfig) metricsStoreName(withPrometheus bool) string {
	name := "InfluxDB at " + redactedURL(fc.InfluxDB.URL)
	if withPrometheus {
		name += " and Prometheus at " + redactedURL(fc.Prometheus.URL)
	}
	return name
}

// loadBalancerName names the way to HAProxy for messages.
func (fc *fileConfig) loadBalancerName() string {
	if fc.HAProxy.Mode == haproxy.ModeRuntime {
		return "HAProxy's admin socket " + fc.HAProxy.RuntimeSocket
	}
	return "HAProxy's Data Plane API at " + redactedURL(fc.HAProxy.URL)
}

// redactedURL is u without a password it may carry.
func redactedURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(an unparsable URL)"
	}
	return p.Redacted()
}
