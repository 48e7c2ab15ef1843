//go:build integration

package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dockerswarm "github.com/docker/docker/api/types/swarm"

	"github.com/fridaymorning/fridaymorning/internal/crashpoint"
	"github.com/fridaymorning/fridaymorning/swarm"
)

// These tests are issue 13's on the real bed: no canary nobody owns, no two owners, no lock only a human
// with docker can clear. Crashes happen at exact points: the binary kills itself (SIGKILL) right after
// the event FRIDAYMORNING_TEST_CRASH_AFTER names, before it does anything more.

// crashAt runs fridaymorning with args until it kills itself right after the event point names, and
// returns its output.
func (s *stack) crashAt(point string, args ...string) string {
	s.t.Helper()
	env := s.env
	s.env = append(append([]string(nil), env...), crashpoint.Env+"="+point)
	defer func() { s.env = env }()
	code, out := s.run(args...)
	if code != -1 {
		s.t.Fatalf("fridaymorning %s exited %d instead of crashing after %q", strings.Join(args, " "), code, point)
	}
	return out
}

// removeRecordLabel does what `docker service update --label-rm fridaymorning.state` (and a `docker stack
// deploy` of the service's stack) does to the stable service.
func (s *stack) removeRecordLabel() {
	s.t.Helper()
	for attempt := 0; ; attempt++ {
		svc := s.inspect()
		spec := svc.Spec
		labels := map[string]string{}
		for k, v := range spec.Labels {
			if k != swarm.LabelState && k != swarm.LabelRequest {
				labels[k] = v
			}
		}
		spec.Labels = labels
		_, err := s.docker.ServiceUpdate(context.Background(), svc.ID, svc.Version, spec, dockerswarm.ServiceUpdateOptions{})
		if err == nil {
			return
		}
		if attempt > 10 {
			s.t.Fatal(err)
		}
	}
}

// withConfig rewrites the stack's fridaymorning.yaml: each pair replaces old by new, once.
func (s *stack) withConfig(pairs ...string) {
	s.t.Helper()
	raw, err := os.ReadFile(s.configPath)
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if !bytes.Contains(raw, []byte(pairs[i])) {
			s.t.Fatalf("the stack's config has no %q", pairs[i])
		}
		raw = bytes.Replace(raw, []byte(pairs[i]), []byte(pairs[i+1]), 1)
	}
	if err := os.WriteFile(s.configPath, raw, 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// waitTrafficOff polls until all weight is on stable and the canary is gone, and returns how long that
// took; it fails the test at the deadline.
func (s *stack) waitTrafficOff(deadline time.Duration) time.Duration {
	s.t.Helper()
	began := time.Now()
	for {
		if w := s.weights(); w["canary1"] == 0 && w["stable1"] > 0 && !s.canaryExists() {
			return time.Since(began)
		}
		if time.Since(began) > deadline {
			s.t.Fatalf("after %s the canary still has traffic (%v) or exists (%v)", deadline, s.weights(), s.canaryExists())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestKillAtEveryPromotionSubStep kills one promotion at every sub-step in turn: the release, then each
// resume that takes it over, dies right after the sub-step is done and before the record says so. The
// last resume finishes the promotion: stable on the new image, its update policy as it was, no canary, no
// failed request.
func TestKillAtEveryPromotionSubStep(t *testing.T) {
	s := newStack(t)
	own := s.inspect().Spec.UpdateConfig
	stop := s.startLoad(100)
	v2, canary := s.image+":v2", swarm.CanaryName(s.service)
	points := []string{
		"progress the canary can carry all traffic",
		"traffic all requests to the canary while the stable service is updated",
		"progress stable " + s.service + " runs " + v2 + " and is healthy",
		"traffic all requests back on the stable service, now running " + v2,
		"progress the canary's servers are drained",
		"progress canary service " + canary + " removed",
	}
	args := []string{"release", "--config", s.configPath, "--image", v2}
	for _, p := range points {
		s.crashAt(p, args...)
		s.waitDead()
		args = []string{"resume", s.service, "--config", s.configPath}
	}
	code, out := s.run(args...)
	load := stop()
	if code != exitPromoted || !strings.Contains(out, "taking over") {
		t.Fatalf("the last resume exited %d, want %d after taking over", code, exitPromoted)
	}
	if strings.Contains(out, "update app") || strings.Contains(out, "rolling it back") {
		t.Error("the last resume touched the promoted stable service")
	}
	s.checkCleanEnd(v2, "promoted")
	if got := s.inspect().Spec.UpdateConfig; !reflect.DeepEqual(got, own) {
		t.Errorf("the promotion left the update policy %+v, want the service's own %+v", got, own)
	}
	if load.Failed != 0 {
		t.Errorf("%d of %d requests failed (%v)", load.Failed, load.Sent, load.Errors)
	}
}

// TestKillAtEveryRollbackSubStep does the same to a rollback to the warm standby.
func TestKillAtEveryRollbackSubStep(t *testing.T) {
	s := newStack(t)
	s.withStandby("10m")
	stop := s.startLoad(100)
	v1, canary := s.image+":v1", swarm.CanaryName(s.service)
	rel := s.start("release", "--config", s.configPath, "--image", s.image+":v2")
	rel.waitLine(3*time.Minute, "event=phase", "phase=standby")
	// The event goes out just before the record says standby: kill once it does.
	deadline := time.Now().Add(30 * time.Second)
	for v := s.status(); v.Record == nil || v.Record.Phase != "standby"; v = s.status() {
		if time.Now().After(deadline) {
			t.Fatalf("the record never said standby: %+v", v.Record)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rel.kill9()
	s.waitDead()
	points := []string{
		"traffic all requests to the standby running " + v1,
		"progress stable " + s.service + " runs " + v1 + " again and is healthy",
		"traffic all requests back on the stable service, running " + v1 + " again",
		"progress the canary's servers are drained",
		"progress canary service " + canary + " removed",
	}
	args := []string{"rollback", s.service, "--config", s.configPath}
	for _, p := range points {
		s.crashAt(p, args...)
		s.waitDead()
	}
	code, out := s.run(args...)
	load := stop()
	if code != 0 || !strings.Contains(out, "taking over") {
		t.Fatalf("the last rollback exited %d, want 0 after taking over", code)
	}
	s.checkCleanEnd(v1, "rolled-back")
	if load.Failed != 0 {
		t.Errorf("%d of %d requests failed (%v)", load.Failed, load.Sent, load.Errors)
	}
}

// TestVanishedRecordDuringAFailingBakeAborts removes the release record from the stable service, as a
// `docker stack deploy` of its stack does, while a failing canary bakes: the driver writes it back and
// aborts; before, it took the loss for a take-over and left the canary serving.
func TestVanishedRecordDuringAFailingBakeAborts(t *testing.T) {
	s := newStack(t)
	// Early looks rare, so that the record goes before a look fails the canary.
	s.withConfig("  max_extensions: 1\n", "  max_extensions: 1\n  early_interval: 10s\n")
	stop := s.startLoad(100)
	rel := s.start("release", "--config", s.configPath, "--image", s.image+":v2-errors", "--bake", "30s")
	rel.waitLine(2*time.Minute, "event=bake", "step=1/2")
	s.removeRecordLabel()
	off := s.waitTrafficOff(45 * time.Second)
	t.Logf("traffic off the canary and the canary removed %s after the record was removed", off)
	code := rel.wait(time.Minute)
	stop()
	if code != exitAbortedError && code != exitAbortedAnalysis {
		t.Fatalf("the release exited %d, want %d (aborted for the lost record) or %d", code, exitAbortedError, exitAbortedAnalysis)
	}
	if out := rel.out.String(); !strings.Contains(out, "was removed") || strings.Contains(out, "took over") {
		t.Errorf("the release did not say its record was removed, or took it for a take-over")
	}
	s.checkCleanEnd(s.image+":v1", map[int]string{exitAbortedError: "aborted-error", exitAbortedAnalysis: "aborted-analysis"}[code])
}

// TestDeadDriverAndVanishedRecord: the driver is killed and the record removed; status and abort find the
// release on its canary, and abort, run at once, asks the dead driver only until it is stale, then takes
// the release over and aborts it.
func TestDeadDriverAndVanishedRecord(t *testing.T) {
	s := newStack(t)
	stop := s.startLoad(100)
	rel := s.start("release", "--config", s.configPath, "--image", s.image+":v2", "--bake", "60s")
	rel.waitLine(2*time.Minute, "event=bake", "step=1/2")
	rel.kill9()
	s.removeRecordLabel()
	if v := s.status(); v.Record == nil || !v.Recovered || !v.Record.Active() {
		t.Fatalf("status with the record gone: %+v, want the release found on its canary", v)
	}
	began := time.Now()
	code, out := s.run("abort", s.service, "--config", s.configPath)
	took := time.Since(began)
	load := stop()
	if code != 0 {
		t.Fatalf("abort exited %d", code)
	}
	for _, want := range []string{"event=requested", "event=stale", "taking over"} {
		if !strings.Contains(out, want) {
			t.Errorf("abort's output lacks %q", want)
		}
	}
	// Bounded by the staleness and the abort itself, nowhere near --timeout (15m).
	if took > 2*time.Minute {
		t.Errorf("abort took %s", took)
	}
	s.checkCleanEnd(s.image+":v1", "aborted-operator")
	if load.Failed != 0 {
		t.Errorf("%d of %d requests failed (%v)", load.Failed, load.Sent, load.Errors)
	}
}

// TestUnlockClearsAStuckRelease: the driver died and someone removed the canary by hand; unlock looks
// at what runs, puts the traffic on the healthy stable service and frees the lock, saying what it did.
func TestUnlockClearsAStuckRelease(t *testing.T) {
	s := newStack(t)
	rel := s.start("release", "--config", s.configPath, "--image", s.image+":v2", "--bake", "60s")
	rel.waitLine(2*time.Minute, "event=bake", "step=1/2")
	rel.kill9()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sw, err := swarm.New(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	if err := sw.RemoveService(ctx, swarm.CanaryName(s.service)); err != nil {
		t.Fatal(err)
	}
	s.waitDead()
	code, out := s.run("unlock", s.service, "--config", s.configPath)
	if code != 0 {
		t.Fatalf("unlock exited %d", code)
	}
	for _, want := range []string{"is gone", "runs " + s.image + ":v1 and is healthy", "all traffic is on stable", "outcome=unlocked"} {
		if !strings.Contains(out, want) {
			t.Errorf("unlock's report lacks %q", want)
		}
	}
	s.checkCleanEnd(s.image+":v1", "unlocked")
}

// flakyProxy forwards TCP connections to a target until it is taken down: then it refuses them, as a
// Data Plane API that is down does.
type flakyProxy struct {
	t      *testing.T
	target string
	ln     net.Listener
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newFlakyProxy(t *testing.T, target string) *flakyProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &flakyProxy{t: t, target: target, ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.down {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c)
			p.mu.Unlock()
			go p.pipe(c)
		}
	}()
	return p
}

func (p *flakyProxy) pipe(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, u)
	p.mu.Unlock()
	go func() { _, _ = io.Copy(u, c); u.Close() }()
	_, _ = io.Copy(c, u)
	c.Close()
}

// setDown takes the proxy down (closing every open connection) or brings it back.
func (p *flakyProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// TestAbortWaitsOutADataPlaneAPIOutage: the Data Plane API goes down as a failing canary bakes; the abort
// keeps trying, with backoff and the real cause each time, well past the five tries it gave up after,
// and once the API is back puts traffic on stable and removes the canary, without anyone typing a
// command.
func TestAbortWaitsOutADataPlaneAPIOutage(t *testing.T) {
	s := newStack(t)
	raw, err := os.ReadFile(s.configPath)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`url: http://(127\.0\.0\.1:\d+)/(v\d)\n  user: admin`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("no Data Plane API URL in the stack's config")
	}
	proxy := newFlakyProxy(t, string(m[1]))
	s.withConfig(string(m[0]), "url: http://"+proxy.ln.Addr().String()+"/"+string(m[2])+"\n  user: admin")
	stop := s.startLoad(100)
	rel := s.start("release", "--config", s.configPath, "--image", s.image+":v2-errors", "--bake", "60s")
	rel.waitLine(2*time.Minute, "event=bake", "step=1/2")
	proxy.setDown(true)
	// Attempt 7 comes 0.5+1+2+4+5+5 s after the first: the outage lasts well over the old 7.5 s.
	rel.waitLine(time.Minute, "moving traffic back to stable, attempt 7")
	proxy.setDown(false)
	code := rel.wait(2 * time.Minute)
	stop()
	if code != exitAbortedAnalysis {
		t.Fatalf("the release exited %d, want %d (aborted by analysis, after the outage)", code, exitAbortedAnalysis)
	}
	if out := rel.out.String(); strings.Contains(out, "run `fridaymorning abort") {
		t.Error("the release gave up and asked a human to abort")
	}
	s.checkCleanEnd(s.image+":v1", "aborted-analysis")
}

// TestSupervisorAbortsADeadDriversFailingCanary: with `fridaymorning supervise` running, the driver of a
// failing canary is killed mid-bake; the supervisor takes the release over once it is stale and aborts
// it, without anyone typing a command.
func TestSupervisorAbortsADeadDriversFailingCanary(t *testing.T) {
	s := newStack(t)
	sup := s.start("supervise", "--config", s.configPath, "--interval", "100ms")
	sup.waitLine(30*time.Second, "watching over 1 service")
	// It looks at the service, which has no release yet, a few times.
	time.Sleep(time.Second)
	stop := s.startLoad(100)
	rel := s.start("release", "--config", s.configPath, "--image", s.image+":v2-errors", "--bake", "60s")
	rel.waitLine(2*time.Minute, "event=bake", "step=1/2")
	rel.kill9()
	// stale_after (3s) and the supervisor's interval, then the abort itself.
	off := s.waitTrafficOff(40 * time.Second)
	t.Logf("traffic off the canary %s after the kill", off)
	sup.waitLine(time.Minute, "ended aborted-operator")
	stop()
	s.checkCleanEnd(s.image+":v1", "aborted-operator")
	if out := sup.out.String(); !strings.Contains(out, "no process drives") || !strings.Contains(out, "taking over") {
		t.Errorf("the supervisor did not say it took the release over")
	}
}

// TestReleaseOfAnotherServiceOnTheSameBackendIsRefused: while a release of A bakes, a release of B whose
// config names A's backend is refused before it changes anything, and A's traffic is left as it was.
func TestReleaseOfAnotherServiceOnTheSameBackendIsRefused(t *testing.T) {
	a, b := newStack(t), newStack(t)
	rel := a.start("release", "--config", a.configPath, "--image", a.image+":v2", "--bake", "60s")
	rel.waitLine(2*time.Minute, "event=bake", "step=1/2")
	before := a.weights()
	// B's config: A's (its HAProxy, its backend), but for service B and B's canary ports.
	raw, err := os.ReadFile(a.configPath)
	if err != nil {
		t.Fatal(err)
	}
	own, err := os.ReadFile(b.configPath)
	if err != nil {
		t.Fatal(err)
	}
	ports := regexp.MustCompile(`  ports: \[.*\]\n`)
	raw = bytes.Replace(raw, []byte("service: "+a.service+"\n"), []byte("service: "+b.service+"\n"), 1)
	raw = ports.ReplaceAll(raw, ports.Find(own))
	bConfig := b.configPath + ".on-a"
	if err := os.WriteFile(bConfig, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := b.run("release", "--config", bConfig, "--image", b.image+":v2")
	if code != exitError || !strings.Contains(out, "which is not service "+b.service+"'s") || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("the release of %s on %s's backend exited %d, want %d and a refusal naming its servers", b.service, a.service, code, exitError)
	}
	if b.canaryExists() {
		t.Error("the refused release created a canary")
	}
	if got := a.weights(); !reflect.DeepEqual(got, before) {
		t.Errorf("the refused release moved %s's traffic: %v → %v", a.service, before, got)
	}
	if v := a.status(); v.Record == nil || !v.Alive || v.Record.Phase != "baking" {
		t.Errorf("%s's release after the refusal: %+v", a.service, v.Record)
	}
	if code, _ := a.run("abort", a.service, "--config", a.configPath); code != 0 {
		t.Fatalf("abort of %s exited %d", a.service, code)
	}
	rel.wait(time.Minute)
	a.checkCleanEnd(a.image+":v1", "aborted-operator")
}
