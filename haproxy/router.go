// Package haproxy is fridaymorning's adapter to HAProxy: it moves traffic between the stable and canary
// server groups of one backend by setting server weights, waits for servers to pass their health checks,
// drains them, and reads their request counters. It reaches HAProxy through the Data Plane API, v2 or v3
// (the default: changes survive reloads), or straight through the admin socket (for HAProxy without the
// Data Plane API).
package haproxy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// Groups of servers, as named by the release engine.
const (
	GroupStable = "stable"
	GroupCanary = "canary"
)

// Modes of reaching HAProxy.
const (
	ModeDataplane = "dataplane"
	ModeRuntime   = "runtime"
)

// Sentinel errors, wrapped by the client's errors where a caller may branch on them.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("version conflict")
	ErrUnreachable  = errors.New("unreachable")
	// ErrNoServer: a group has no server that can take traffic.
	ErrNoServer = errors.New("no server up")
)

// Config configures a Client; main builds it from fridaymorning.yaml.
type Config struct {
	// Mode is how HAProxy is reached: ModeDataplane (default) or ModeRuntime.
	Mode string
	// URL is the Data Plane API's base with its major version, e.g. http://127.0.0.1:5555/v3 or …/v2; a
	// URL without one (http://127.0.0.1:5555) is asked which it serves (/v3/info, then /v2/info).
	URL string
	// User and Password are the API's basic-auth credentials. The password never appears in errors.
	User, Password string
	// CAFile, if set, is the PEM file of the CA that signed the API's TLS certificate.
	CAFile string
	// RuntimeSocket is HAProxy's admin socket, for ModeRuntime.
	RuntimeSocket string
	// Backend is the HAProxy backend whose servers carry the service.
	Backend string
	// StableServers and CanaryServers name the backend's servers of each group: a server's name, or a
	// prefix ending in "*" for the servers of a server-template ("stable*" for stable1..stableN).
	StableServers, CanaryServers []string
	// BaseWeight is the weight of a group's servers when the group carries all traffic (default 100).
	BaseWeight int
	// Timeout bounds each request to HAProxy (default 5s).
	Timeout time.Duration
	// PollInterval is how often waits look at HAProxy's state (default 250ms).
	PollInterval time.Duration
	// HTTPClient, if set, is used instead of a default client (ModeDataplane).
	HTTPClient *http.Client
	// Cohorts says the backend keeps clients on one server with a persistence cookie. HAProxy honours
	// persistence on servers at weight 0, so a group that gets no traffic is also put in maintenance,
	// which sends its sticky clients to the other group at once, and taken out of it before it gets
	// traffic again. fridaymorning then owns the admin state of the group servers.
	Cohorts bool
}

// ServerState is one server as HAProxy runs it, from its statistics.
type ServerState struct {
	Name string
	// Weight is the server's weight as set where HAProxy reports it (the admin socket), else its
	// effective weight, which slow start lowers (see Throttle).
	Weight int
	// Status is HAProxy's: "UP", "DOWN", "MAINT", "DRAIN", "NOLB", "no check", or a transition such as
	// "UP 1/2"; CheckStatus the last health check's result ("L7OK", "L4CON", "INI"…).
	Status, CheckStatus string
	// Addr is where the server sends requests, "host:port"; empty for a template slot without one.
	Addr string
	// Sessions are the current sessions; Responses and Errors5xx count responses since HAProxy started.
	Sessions, Responses, Errors5xx int64
	// Failed counts, since HAProxy started, the attempts on the server that got no answer: connection
	// and response errors (econ, eresp) and the attempts HAProxy retried or redispatched (wretr,
	// wredis). With retries on, a user may never see these: the answer came from another server.
	Failed int64
	// Throttle is the share, in percent, of its weight a server in slow start runs at; 0 outside it.
	Throttle int
}

// Usable reports whether the server takes new traffic: up with its first check done, or not checked.
// Servers that are down, draining or in maintenance are left out of the share.
func (s ServerState) Usable() bool {
	if s.Status == "no check" {
		return true
	}
	check := strings.TrimPrefix(s.CheckStatus, "* ")
	return strings.HasPrefix(s.Status, "UP") && check != "INI" && check != ""
}

// leftOut reports whether the server is out of rotation on purpose: in maintenance (set by an operator,
// by fridaymorning for cohorts, or by HAProxy for a template slot without an address).
func (s ServerState) leftOut() bool { return strings.HasPrefix(s.Status, "MAINT") }

// adminMaint reports whether the server is in maintenance by an admin command ("MAINT"), rather than
// for want of an address ("MAINT (resolution)") or through a tracked server ("MAINT (via …)").
func (s ServerState) adminMaint() bool { return s.Status == "MAINT" }

// runs reports whether the server runs weight w as HAProxy reports it: the weight itself; in slow start
// (a throttle, with no weight as set reported), about the throttle's share of it, growing until the slow
// start ends; in maintenance, anything (HAProxy reports its effective weight, 0, or the one it returns
// to). A draining server reports its weight as set.
func (s ServerState) runs(w int) bool {
	switch {
	case s.Weight == w || s.leftOut():
		return true
	case s.Throttle > 0 && s.Throttle < 100 && w > 0:
		// The effective weight lags the throttle by up to one of HAProxy's once-a-second updates.
		expect := float64(w) * float64(s.Throttle) / 100
		return s.Weight > 0 && s.Weight <= w && math.Abs(float64(s.Weight)-expect) <= float64(w)/4+1
	}
	return false
}

func (s ServerState) describe() string {
	return fmt.Sprintf("%s (%s, check %s)", s.Name, s.Status, s.CheckStatus)
}

// backend is a way of reaching HAProxy.
type backend interface {
	// check verifies reachability, credentials and that the backend exists.
	check(ctx context.Context) error
	// servers returns the backend's servers as HAProxy runs them now.
	servers(ctx context.Context) (map[string]ServerState, error)
	// setWeights writes the weights in order and returns the servers written (also when it fails
	// midway) and, if it read them back in the same exchange, the weights HAProxy runs after the writes
	// of the servers in check, as states with only Name and Weight (nil otherwise: the caller reads).
	setWeights(ctx context.Context, changes []weightChange, check []string) (done []string, live map[string]ServerState, err error)
	// setMaint puts one server in maintenance, or takes it out.
	setMaint(ctx context.Context, name string, maint bool) error
	String() string
}

// sessioner is a backend whose calls can share one connection: session returns such a backend, for
// the calls of one operation, and the func that ends it.
type sessioner interface {
	session() (backend, func())
}

// weightChange is one server's new weight, and the weight it runs now.
type weightChange struct {
	name         string
	weight, from int
}

// Client moves traffic between the stable and canary servers of one backend.
type Client struct {
	cfg Config
	be  backend
	// dp is the Data Plane API backend, when that is the mode.
	dp *dataplane
}

// New checks cfg and returns a client. It does no I/O: Check does.
func New(cfg Config) (*Client, error) {
	if cfg.Backend == "" {
		return nil, errors.New("haproxy: no backend: set haproxy.backend")
	}
	if len(cfg.StableServers) == 0 || len(cfg.CanaryServers) == 0 {
		return nil, errors.New("haproxy: set haproxy.stable_servers and haproxy.canary_servers: the backend's servers of each group")
	}
	seen := map[string]bool{}
	for _, n := range append(append([]string{}, cfg.StableServers...), cfg.CanaryServers...) {
		if n == "" || n == "*" || seen[n] {
			return nil, fmt.Errorf("haproxy: server %q is empty, a bare *, or listed twice in haproxy.stable_servers/canary_servers", n)
		}
		seen[n] = true
	}
	if cfg.BaseWeight <= 0 || cfg.BaseWeight > MaxWeight {
		cfg.BaseWeight = 100
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	c := &Client{cfg: cfg}
	switch cfg.Mode {
	case "", ModeDataplane:
		dp, err := newDataplane(cfg)
		if err != nil {
			return nil, err
		}
		c.be, c.dp = dp, dp
	case ModeRuntime:
		rt, err := newRuntimeSocket(cfg)
		if err != nil {
			return nil, err
		}
		c.be = rt
	default:
		return nil, fmt.Errorf("haproxy: haproxy.mode %q: want %q or %q", cfg.Mode, ModeDataplane, ModeRuntime)
	}
	return c, nil
}

// member reports whether server name belongs to a group given by names and prefix patterns.
func member(patterns []string, name string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(name, prefix) {
				return true
			}
		} else if p == name {
			return true
		}
	}
	return false
}

// groups resolves the configured names and patterns against the backend's servers.
func (c *Client) groups(states map[string]ServerState) (stable, canary []string, err error) {
	for name := range states {
		s, k := member(c.cfg.StableServers, name), member(c.cfg.CanaryServers, name)
		switch {
		case s && k:
			return nil, nil, fmt.Errorf("haproxy: server %q of backend %q matches both haproxy.stable_servers and haproxy.canary_servers", name, c.cfg.Backend)
		case s:
			stable = append(stable, name)
		case k:
			canary = append(canary, name)
		}
	}
	sort.Strings(stable)
	sort.Strings(canary)
	return stable, canary, nil
}

func (c *Client) group(states map[string]ServerState, name string) ([]string, error) {
	stable, canary, err := c.groups(states)
	if err != nil {
		return nil, err
	}
	switch name {
	case GroupStable:
		return stable, nil
	case GroupCanary:
		return canary, nil
	}
	return nil, fmt.Errorf("haproxy: unknown server group %q: want %q or %q", name, GroupStable, GroupCanary)
}

// Check verifies, without changing anything, that HAProxy answers (and accepts the credentials), has
// the backend, and that every configured server or pattern names servers of it.
func (c *Client) Check(ctx context.Context) error {
	if err := c.be.check(ctx); err != nil {
		return err
	}
	states, err := c.be.servers(ctx)
	if err != nil {
		return err
	}
	var missing []string
	for _, p := range append(append([]string{}, c.cfg.StableServers...), c.cfg.CanaryServers...) {
		found := false
		for name := range states {
			found = found || member([]string{p}, name)
		}
		if !found {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("haproxy: backend %q has no server %s (%w): check haproxy.stable_servers/canary_servers in fridaymorning.yaml", c.cfg.Backend, strings.Join(missing, ", "), ErrNotFound)
	}
	_, _, err = c.groups(states)
	return err
}

// WeightsDisagree names each group server whose runtime weight is not the one in HAProxy's
// configuration, with both values ("stable1 runs weight 7, its configuration says 100"), in name order:
// someone used `set weight` on the admin socket, which the configuration does not see. Through the
// Data Plane API only (the runtime socket has no configuration to compare with: nil); a shift sets the
// runtime weights it needs either way. Template slots have no configured weight of their own.
func (c *Client) WeightsDisagree(ctx context.Context) ([]string, error) {
	if c.dp == nil {
		return nil, nil
	}
	configured, err := c.dp.configWeights(ctx)
	if err != nil {
		return nil, err
	}
	states, err := c.be.servers(ctx)
	if err != nil {
		return nil, err
	}
	stable, canary, err := c.groups(states)
	if err != nil {
		return nil, err
	}
	names := append(stable, canary...)
	sort.Strings(names)
	var out []string
	for _, n := range names {
		if w, ok := configured[n]; ok && !states[n].runs(w) {
			out = append(out, fmt.Sprintf("%s runs weight %d, its configuration says %d", n, states[n].Weight, w))
		}
	}
	return out, nil
}

// Weights reads the live weights of the group servers, by name.
func (c *Client) Weights(ctx context.Context) (map[string]int, error) {
	states, err := c.be.servers(ctx)
	if err != nil {
		return nil, err
	}
	stable, canary, err := c.groups(states)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, n := range append(stable, canary...) {
		out[n] = states[n].Weight
	}
	return out, nil
}

// ConfigWeights reads the weights written in HAProxy's configuration (ModeDataplane only), by name:
// what HAProxy would run after a reload.
func (c *Client) ConfigWeights(ctx context.Context) (map[string]int, error) {
	if c.dp == nil {
		return nil, errors.New("haproxy: the runtime socket has no configuration to read")
	}
	return c.dp.configWeights(ctx)
}

// Shift sends canaryPercent (0–100) of new requests to the canary group, counting only servers that
// take traffic (down, draining or maintenance ones are left out of the share: see plan). Servers are written one at a time, in the order
// that keeps the live share closest to the range between the old and the new one: going to 0 takes the
// canary out first. If a write or the read-back fails, the servers already changed get their old weights
// back, so HAProxy is left with the old split; except on the way to 0, where the writes that went through
// are kept (each lowered the canary's share) and the caller tries again. The weights returned are read back from HAProxy's runtime, and the share
// is what they give.
func (c *Client) Shift(ctx context.Context, canaryPercent float64) (map[string]int, float64, error) {
	// The read and the writes share a connection where the backend keeps one (the runtime socket).
	be := c.be
	if s, ok := be.(sessioner); ok {
		var end func()
		be, end = s.session()
		defer end()
	}
	states, err := be.servers(ctx)
	if err != nil {
		return nil, 0, err
	}
	stable, canary, err := c.groups(states)
	if err != nil {
		return nil, 0, err
	}
	if c.cfg.Cohorts {
		// A group about to get traffic comes out of the maintenance cohorts put it in.
		var carry []string
		if canaryPercent < 100 {
			carry = append(carry, stable...)
		}
		if canaryPercent > 0 {
			carry = append(carry, canary...)
		}
		if states, err = c.unmaint(ctx, states, carry); err != nil {
			return nil, 0, err
		}
	}
	p, err := c.plan(states, stable, canary, canaryPercent)
	if err != nil {
		return nil, 0, err
	}
	target, us, uc := p.target, p.us, p.uc
	old := map[string]int{}
	for n := range target {
		old[n] = states[n].Weight
	}

	var changes []weightChange
	for _, n := range writeOrder(old, target, us, uc, stable, canary) {
		if old[n] != target[n] {
			changes = append(changes, weightChange{n, target[n], old[n]})
		}
	}
	var live map[string]ServerState
	var done []string
	undo := func(cause error) error {
		if canaryPercent <= 0 && len(done) > 0 {
			// On the way to 0 every write lowers the canary's share (writeOrder): what was written is
			// safer than what was there, and putting it back would undo the part of an abort that worked.
			return fmt.Errorf("%w (the weights written, %s, are kept: they carry less canary traffic than the old ones)", cause, strings.Join(done, ", "))
		}
		return c.rollback(ctx, old, done, cause)
	}
	if len(changes) > 0 {
		check := make([]string, 0, len(target))
		for n := range target {
			check = append(check, n)
		}
		sort.Strings(check)
		done, live, err = be.setWeights(ctx, changes, check)
		if err != nil {
			return nil, 0, undo(err)
		}
	} else {
		live = states // nothing to write: what was just read is the read-back
	}
	got, err := c.waitLive(ctx, target, live)
	if err != nil {
		return nil, 0, undo(err)
	}
	if c.cfg.Cohorts {
		// A group that gets no traffic goes into maintenance, so that its sticky clients leave it now.
		var idle []string
		if canaryPercent >= 100 {
			idle = append(idle, stable...)
		}
		if canaryPercent <= 0 {
			idle = append(idle, canary...)
		}
		for _, n := range idle {
			if !states[n].leftOut() {
				if err := c.be.setMaint(ctx, n, true); err != nil {
					return got, share(got, us, uc), fmt.Errorf("haproxy: weights set, but putting %s in maintenance (to move its sticky clients) failed: %w", n, err)
				}
			}
		}
	}
	return got, share(got, us, uc), nil
}

// split is the weights a shift to a share writes, as computed from the servers' states.
type split struct {
	// us and uc are the stable and canary servers that take traffic; the share is theirs.
	us, uc []string
	target map[string]int
}

// plan computes the weights of a shift to canaryPercent from the servers' states. Servers that take no
// traffic (down, draining, in maintenance) are left out of the share: a stable one gets its group's
// weight, so that it rejoins at about the right share; a canary one gets 0, so that the canary's share
// never grows past the step's when it comes up (three canary slots of which one resolved would carry
// three times the step's share): the weights are computed again once it takes traffic (see Verify).
func (c *Client) plan(states map[string]ServerState, stable, canary []string, canaryPercent float64) (split, error) {
	usable := func(names []string) (up, out []string) {
		for _, n := range names {
			if states[n].Usable() {
				up = append(up, n)
			} else {
				out = append(out, n)
			}
		}
		return up, out
	}
	us, sOut := usable(stable)
	uc, cOut := usable(canary)
	describe := func(names []string) string {
		d := make([]string, len(names))
		for i, n := range names {
			d[i] = states[n].describe()
		}
		return strings.Join(d, ", ")
	}
	if canaryPercent > 0 && len(uc) == 0 {
		return split{}, fmt.Errorf("haproxy: %w: no canary server of backend %q takes traffic (%s)", ErrNoServer, c.cfg.Backend, describe(canary))
	}
	if canaryPercent < 100 && len(us) == 0 {
		return split{}, fmt.Errorf("haproxy: %w: no stable server of backend %q takes traffic (%s): moving traffic to them would leave no server", ErrNoServer, c.cfg.Backend, describe(stable))
	}
	sw, cw, _ := SplitWeights(len(us), len(uc), canaryPercent, c.cfg.BaseWeight)
	target := map[string]int{}
	for i, n := range us {
		target[n] = sw[i]
	}
	for i, n := range uc {
		target[n] = cw[i]
	}
	for _, n := range sOut {
		target[n] = maxOf(sw, c.cfg.BaseWeight)
		if canaryPercent >= 100 {
			target[n] = 0
		}
	}
	for _, n := range cOut {
		target[n] = 0
	}
	return split{us: us, uc: uc, target: target}, nil
}

// Verify reads the split HAProxy runs and holds it to set, the weights a Shift to canaryPercent
// returned. drifted names, with its live weight, each server that no longer runs its weight in set:
// someone else changed it (an operator's `set weight` on the admin socket, a reload or restart with
// the configured weights). stale reports, when nothing drifted, that servers took up or left traffic
// since (a canary server that came up at weight 0, a stable one that went down), so that a Shift to
// canaryPercent now writes other weights: the share set is no longer the share HAProxy gives.
func (c *Client) Verify(ctx context.Context, canaryPercent float64, set map[string]int) (drifted map[string]int, stale bool, err error) {
	states, err := c.be.servers(ctx)
	if err != nil {
		return nil, false, err
	}
	stable, canary, err := c.groups(states)
	if err != nil {
		return nil, false, err
	}
	drifted = map[string]int{}
	for n, w := range set {
		if st, ok := states[n]; ok && !st.runs(w) {
			drifted[n] = st.Weight
		}
	}
	if len(drifted) > 0 {
		return drifted, false, nil
	}
	p, err := c.plan(states, stable, canary, canaryPercent)
	if err != nil {
		// No server of a group takes traffic: HAProxy sends it nothing, and a Shift could not do better.
		return nil, false, nil
	}
	for n, w := range p.target {
		if sw, ok := set[n]; !ok || sw != w {
			return nil, true, nil
		}
	}
	return nil, false, nil
}

// unmaintWait bounds how long a server taken out of maintenance may take to finish its first check.
const unmaintWait = 15 * time.Second

// unmaint takes the servers of names that are in admin maintenance out of it, waits until HAProxy has
// checked them again, and returns the backend's servers as they are then.
func (c *Client) unmaint(ctx context.Context, states map[string]ServerState, names []string) (map[string]ServerState, error) {
	var back []string
	for _, n := range names {
		if states[n].adminMaint() {
			if err := c.be.setMaint(ctx, n, false); err != nil {
				return nil, err
			}
			back = append(back, n)
		}
	}
	if len(back) == 0 {
		return states, nil
	}
	deadline := time.Now().Add(unmaintWait)
	for {
		fresh, err := c.be.servers(ctx)
		if err != nil {
			return nil, err
		}
		checked := true
		for _, n := range back {
			st := fresh[n]
			check := strings.TrimPrefix(st.CheckStatus, "* ")
			checked = checked && !st.leftOut() && check != "INI" && check != ""
		}
		if checked || time.Now().After(deadline) || ctx.Err() != nil {
			return fresh, nil
		}
		time.Sleep(c.cfg.PollInterval)
	}
}

func maxOf(ws []int, def int) int {
	if len(ws) == 0 {
		return def
	}
	m := ws[0]
	for _, w := range ws[1:] {
		m = max(m, w)
	}
	return m
}

// share is the canary servers' share, in percent, of the weight of the usable servers.
func share(weights map[string]int, stable, canary []string) float64 {
	var s, c int
	for _, n := range stable {
		s += weights[n]
	}
	for _, n := range canary {
		c += weights[n]
	}
	if s+c == 0 {
		return 0
	}
	return 100 * float64(c) / float64(s+c)
}

// writeOrder returns the servers in the order to write them: the canary group first unless writing the
// stable group first keeps the intermediate share (over usable servers) closer to the range between the
// old and the new share, and never an order whose intermediate state gives no usable server any weight.
func writeOrder(old, target map[string]int, us, uc, stable, canary []string) []string {
	canaryFirst := append(append([]string{}, canary...), stable...)
	stableFirst := append(append([]string{}, stable...), canary...)
	mid := func(first []string) map[string]int {
		m := map[string]int{}
		for k, v := range old {
			m[k] = v
		}
		for _, n := range first {
			m[n] = target[n]
		}
		return m
	}
	from, to := share(old, us, uc), share(target, us, uc)
	lo, hi := min(from, to), max(from, to)
	outside := func(s float64) float64 { return max(lo-s, s-hi, 0) }
	total := func(w map[string]int) int {
		t := 0
		for _, n := range append(append([]string{}, us...), uc...) {
			t += w[n]
		}
		return t
	}
	viaCanary, viaStable := mid(canary), mid(stable)
	if total(viaCanary) == 0 {
		return stableFirst
	}
	if total(viaStable) != 0 && outside(share(viaStable, us, uc)) < outside(share(viaCanary, us, uc)) {
		return stableFirst
	}
	return canaryFirst
}

// liveWaitLimit bounds how long Shift waits for HAProxy's runtime to show the weights it wrote: at once
// when they went through the runtime socket, after a reload otherwise.
const liveWaitLimit = 5 * time.Second

// waitLive reads the weights HAProxy runs until they are target (as ServerState.runs judges it: servers
// in slow start or maintenance report other numbers), and returns them. live, if not nil, is a reading
// taken after the writes, looked at before reading again.
func (c *Client) waitLive(ctx context.Context, target map[string]int, live map[string]ServerState) (map[string]int, error) {
	deadline := time.Now().Add(liveWaitLimit)
	for {
		states, err := live, error(nil)
		if live == nil {
			states, err = c.be.servers(ctx)
		}
		live = nil
		got := map[string]int{}
		same := err == nil
		if err == nil {
			for n, w := range target {
				st, ok := states[n]
				got[n] = st.Weight
				if ok && st.runs(w) {
					got[n] = w
				} else {
					same = false
				}
			}
			if same {
				return got, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				return nil, fmt.Errorf("haproxy: reading back the live weights of backend %q: %w", c.cfg.Backend, err)
			}
			return nil, fmt.Errorf("haproxy: HAProxy does not run the weights written to backend %q: live %s, written %s: check that HAProxy runs and that %s reaches its runtime socket",
				c.cfg.Backend, formatWeights(got), formatWeights(target), c.be)
		}
		time.Sleep(max(c.cfg.PollInterval/5, 10*time.Millisecond))
	}
}

func formatWeights(w map[string]int) string {
	names := make([]string, 0, len(w))
	for n := range w {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s=%d", n, w[n])
	}
	return strings.Join(parts, ",")
}

// rollback puts back the old weights of the servers in done after cause stopped a shift.
func (c *Client) rollback(ctx context.Context, old map[string]int, done []string, cause error) error {
	if len(done) == 0 {
		return fmt.Errorf("%w (no weight was changed)", cause)
	}
	back := make([]weightChange, 0, len(done))
	for i := len(done) - 1; i >= 0; i-- {
		back = append(back, weightChange{done[i], old[done[i]], -1})
	}
	written, _, err := c.be.setWeights(context.WithoutCancel(ctx), back, nil)
	if err != nil {
		var failed []string
		for _, ch := range back {
			if !slices.Contains(written, ch.name) {
				failed = append(failed, ch.name)
			}
		}
		if len(failed) == 0 {
			failed = []string{"(unknown: " + err.Error() + ")"}
		}
		return fmt.Errorf("%w; putting back the old weights failed for %s: HAProxy is left with a partial split, check backend %q", cause, strings.Join(failed, ", "), c.cfg.Backend)
	}
	return fmt.Errorf("%w (the old weights were put back)", cause)
}

// WaitUp blocks until the group has a server that takes traffic and every other server of it does too
// or is in maintenance (a server-template slot with no address). ctx bounds the wait; its error names
// the servers not ready and their state.
func (c *Client) WaitUp(ctx context.Context, group string) error {
	if c.cfg.Cohorts {
		// The group is about to be used: out of the maintenance cohorts put it in.
		states, err := c.be.servers(ctx)
		if err != nil {
			return err
		}
		names, err := c.group(states, group)
		if err != nil {
			return err
		}
		if _, err := c.unmaint(ctx, states, names); err != nil {
			return err
		}
	}
	var waiting []string // as of the last successful look
	for {
		states, err := c.be.servers(ctx)
		if err == nil {
			var names []string
			names, err = c.group(states, group)
			if err != nil {
				return err
			}
			waiting = waiting[:0]
			up := 0
			for _, n := range names {
				switch st := states[n]; {
				case st.Usable():
					up++
				case st.leftOut():
				default:
					waiting = append(waiting, st.describe())
				}
			}
			if up > 0 && len(waiting) == 0 {
				return nil
			}
			if up == 0 && len(waiting) == 0 {
				waiting = append(waiting, "no server of the group is up")
			}
		} else if errors.Is(err, ErrUnauthorized) {
			return err
		}
		select {
		case <-ctx.Done():
			if len(waiting) > 0 {
				return fmt.Errorf("haproxy: %s servers of backend %q not up: %s: %w", group, c.cfg.Backend, strings.Join(waiting, ", "), ctx.Err())
			}
			return fmt.Errorf("haproxy: waiting for the %s servers of backend %q: %w (last error: %v)", group, c.cfg.Backend, ctx.Err(), err)
		case <-time.After(c.cfg.PollInterval):
		}
	}
}

// Drain blocks until the servers of group have no current sessions. ctx bounds the wait; its error names
// the servers with sessions left.
func (c *Client) Drain(ctx context.Context, group string) error {
	for {
		states, err := c.be.servers(ctx)
		var open []string
		if err == nil {
			var names []string
			names, err = c.group(states, group)
			if err != nil {
				return err
			}
			for _, n := range names {
				if s := states[n].Sessions; s > 0 {
					open = append(open, fmt.Sprintf("%s (%d sessions)", n, s))
				}
			}
			if len(open) == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("haproxy: draining the %s servers of backend %q: %w (last error: %v)", group, c.cfg.Backend, ctx.Err(), err)
			}
			return fmt.Errorf("haproxy: %s servers of backend %q still have sessions: %s: %w", group, c.cfg.Backend, strings.Join(open, ", "), ctx.Err())
		case <-time.After(c.cfg.PollInterval):
		}
	}
}

// Count is what HAProxy's counters say of one group.
type Count struct {
	// Requests answered and, of those, answered with a 5xx status.
	Requests, Errors5xx int64
	// Failed attempts on the group's servers: connection and response errors, retries and
	// redispatches (see ServerState.Failed).
	Failed int64
}

// Counts returns, by group, how many responses the group's servers have sent since HAProxy started,
// how many of them were 5xx, and how many attempts on them failed (retried elsewhere or unanswered):
// the difference of two readings is a step's observed split and the
// second signal to hold the metrics store's numbers against.
func (c *Client) Counts(ctx context.Context) (map[string]Count, error) {
	states, err := c.be.servers(ctx)
	if err != nil {
		return nil, err
	}
	stable, canary, err := c.groups(states)
	if err != nil {
		return nil, err
	}
	out := map[string]Count{GroupStable: {}, GroupCanary: {}}
	for g, names := range map[string][]string{GroupStable: stable, GroupCanary: canary} {
		var t Count
		for _, n := range names {
			t.Requests += states[n].Responses
			t.Errors5xx += states[n].Errors5xx
			t.Failed += states[n].Failed
		}
		out[g] = t
	}
	return out, nil
}

// Requests returns, by group, how many responses the group's servers have sent since HAProxy started:
// the difference of two readings is the observed split of a step.
func (c *Client) Requests(ctx context.Context) (map[string]int64, error) {
	counts, err := c.Counts(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(counts))
	for g, t := range counts {
		out[g] = t.Requests
	}
	return out, nil
}
