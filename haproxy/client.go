// Package haproxy is fridaymorning's adapter to HAProxy: a client of the Data Plane API v2 that moves
// traffic between the stable and canary server groups of one backend by setting server weights, waits for
// servers to pass their health checks, and drains them. Weight changes go through
// PUT /services/haproxy/configuration/servers/{name} outside a transaction, which the Data Plane API applies
// through the runtime API without a reload and also writes to the configuration, so they survive reloads.
package haproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/haproxytech/client-native/v5/models"
)

// Groups of servers, as named by the release engine.
const (
	GroupStable = "stable"
	GroupCanary = "canary"
)

// Sentinel errors, wrapped by the client's errors where a caller may branch on them.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("version conflict")
	ErrUnreachable  = errors.New("unreachable")
)

// Config configures a Client; main builds it from fridaymorning.yaml.
type Config struct {
	// URL is the Data Plane API's base, e.g. http://127.0.0.1:5555/v2.
	URL string
	// User and Password are the API's basic-auth credentials. The password never appears in errors.
	User, Password string
	// Backend is the HAProxy backend whose servers carry the service.
	Backend string
	// StableServers and CanaryServers name the backend's servers of each group.
	StableServers, CanaryServers []string
	// BaseWeight is the weight of a group's servers when the group carries all traffic (default 100).
	BaseWeight int
	// Timeout bounds each HTTP request (default 5s).
	Timeout time.Duration
	// PollInterval is how often waits look at HAProxy's state (default 250ms).
	PollInterval time.Duration
	// HTTPClient, if set, is used instead of a default client.
	HTTPClient *http.Client
}

// Client moves traffic between the stable and canary servers of one backend.
type Client struct {
	cfg  Config
	base *url.URL
	http *http.Client
}

// New checks cfg and returns a client. It does no I/O: Check does.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("haproxy: url %q is not an http(s) URL of the Data Plane API, e.g. http://127.0.0.1:5555/v2: fix haproxy.url", cfg.URL)
	}
	if u.User != nil {
		return nil, errors.New("haproxy: haproxy.url must not carry credentials: set haproxy.user and the password (FRIDAYMORNING_DATAPLANE_PASSWORD or haproxy.password_file)")
	}
	if cfg.Backend == "" {
		return nil, errors.New("haproxy: no backend: set haproxy.backend")
	}
	if len(cfg.StableServers) == 0 || len(cfg.CanaryServers) == 0 {
		return nil, errors.New("haproxy: set haproxy.stable_servers and haproxy.canary_servers: the backend's servers of each group")
	}
	seen := map[string]bool{}
	for _, n := range append(append([]string{}, cfg.StableServers...), cfg.CanaryServers...) {
		if n == "" || seen[n] {
			return nil, fmt.Errorf("haproxy: server %q is empty or listed twice in haproxy.stable_servers/canary_servers", n)
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
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{cfg: cfg, base: u, http: hc}, nil
}

// apiError is a non-2xx answer of the Data Plane API.
type apiError struct {
	status   int
	message  string
	sentinel error
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.message)
}

func (e *apiError) Unwrap() error { return e.sentinel }

// do sends one request and decodes a 2xx JSON answer into out. Errors name the URL, never the password.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) (http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(c.cfg.User, c.cfg.Password)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("haproxy: Data Plane API at %s is not reachable: %w: %w: check haproxy.url and that the API runs", c.base, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.Header, fmt.Errorf("haproxy: reading the answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{status: resp.StatusCode, message: strings.TrimSpace(string(raw))}
		var m models.Error
		if json.Unmarshal(raw, &m) == nil && m.Message != nil {
			e.message = *m.Message
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			e.sentinel = ErrUnauthorized
		case http.StatusNotFound:
			e.sentinel = ErrNotFound
		case http.StatusConflict:
			e.sentinel = ErrConflict
		}
		return resp.Header, e
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.Header, fmt.Errorf("haproxy: %s %s answered %q, not the expected JSON: %w", method, path, truncate(string(raw)), err)
		}
	}
	return resp.Header, nil
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// explain turns a request's error into one that says what to do.
func (c *Client) explain(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnauthorized):
		return fmt.Errorf("haproxy: Data Plane API at %s rejected user %q (%w): check haproxy.user and the password (FRIDAYMORNING_DATAPLANE_PASSWORD or haproxy.password_file)", c.base, c.cfg.User, err)
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("haproxy: %s not found at %s (%w): check haproxy.backend and haproxy.stable_servers/canary_servers in fridaymorning.yaml", what, c.base, err)
	case errors.Is(err, ErrUnreachable):
		return err
	}
	return fmt.Errorf("haproxy: %s at %s: %w", what, c.base, err)
}

// envelope is the v2 API's wrapper of configuration reads.
type envelope[T any] struct {
	Version int64 `json:"_version"`
	Data    T     `json:"data"`
}

func (c *Client) backendQuery() url.Values { return url.Values{"backend": {c.cfg.Backend}} }

// servers reads the backend's servers and the configuration version they belong to.
func (c *Client) servers(ctx context.Context) (int64, map[string]*models.Server, error) {
	var env envelope[models.Servers]
	if _, err := c.do(ctx, http.MethodGet, "/services/haproxy/configuration/servers", c.backendQuery(), nil, &env); err != nil {
		return 0, nil, c.explain(err, fmt.Sprintf("servers of backend %q", c.cfg.Backend))
	}
	out := make(map[string]*models.Server, len(env.Data))
	for _, s := range env.Data {
		out[s.Name] = s
	}
	return env.Version, out, nil
}

// Check verifies, without changing anything, that the API answers, accepts the credentials, and has the
// backend with every configured server.
func (c *Client) Check(ctx context.Context) error {
	var info models.Info
	if _, err := c.do(ctx, http.MethodGet, "/info", nil, nil, &info); err != nil {
		return c.explain(err, "info")
	}
	var b envelope[models.Backend]
	if _, err := c.do(ctx, http.MethodGet, "/services/haproxy/configuration/backends/"+url.PathEscape(c.cfg.Backend), nil, nil, &b); err != nil {
		return c.explain(err, fmt.Sprintf("backend %q", c.cfg.Backend))
	}
	_, srvs, err := c.servers(ctx)
	if err != nil {
		return err
	}
	var missing []string
	for _, n := range c.all() {
		if srvs[n] == nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("haproxy: backend %q has no server %s (%w): check haproxy.stable_servers/canary_servers in fridaymorning.yaml", c.cfg.Backend, strings.Join(missing, ", "), ErrNotFound)
	}
	return nil
}

func (c *Client) all() []string {
	return append(append([]string{}, c.cfg.StableServers...), c.cfg.CanaryServers...)
}

func (c *Client) group(name string) ([]string, error) {
	switch name {
	case GroupStable:
		return c.cfg.StableServers, nil
	case GroupCanary:
		return c.cfg.CanaryServers, nil
	}
	return nil, fmt.Errorf("haproxy: unknown server group %q: want %q or %q", name, GroupStable, GroupCanary)
}

// Weights reads the configured servers' weights as the Data Plane API reports them.
func (c *Client) Weights(ctx context.Context) (map[string]int, error) {
	_, srvs, err := c.servers(ctx)
	if err != nil {
		return nil, err
	}
	return c.weightsOf(srvs)
}

func (c *Client) weightsOf(srvs map[string]*models.Server) (map[string]int, error) {
	out := make(map[string]int, len(srvs))
	for _, n := range c.all() {
		s := srvs[n]
		if s == nil {
			return nil, fmt.Errorf("haproxy: backend %q has no server %q (%w)", c.cfg.Backend, n, ErrNotFound)
		}
		w := 1 // HAProxy's default weight when none is configured
		if s.Weight != nil {
			w = int(*s.Weight)
		}
		out[n] = w
	}
	return out, nil
}

// setWeight writes one server's weight, retrying version conflicts after reading the version and the
// server again.
func (c *Client) setWeight(ctx context.Context, name string, weight int) error {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		var env envelope[*models.Server]
		if _, err := c.do(ctx, http.MethodGet, "/services/haproxy/configuration/servers/"+url.PathEscape(name), c.backendQuery(), nil, &env); err != nil {
			return c.explain(err, fmt.Sprintf("server %q in backend %q", name, c.cfg.Backend))
		}
		srv := env.Data
		w := int64(weight)
		srv.Weight = &w
		q := c.backendQuery()
		q.Set("version", strconv.FormatInt(env.Version, 10))
		_, err := c.do(ctx, http.MethodPut, "/services/haproxy/configuration/servers/"+url.PathEscape(name), q, srv, nil)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			return c.explain(err, fmt.Sprintf("setting the weight of server %q in backend %q", name, c.cfg.Backend))
		}
		lastErr = err
	}
	return c.explain(lastErr, fmt.Sprintf("setting the weight of server %q in backend %q (the configuration kept changing under us)", name, c.cfg.Backend))
}

// Shift sends canaryPercent (0–100) of new requests to the canary group. Servers are written one at a
// time in an order that keeps the live share between the old and the new one, so that going to 0 takes
// the canary out first. If a write fails, the servers already changed get their old weights back, so
// HAProxy is left with the old split. The weights returned are read back after the change.
func (c *Client) Shift(ctx context.Context, canaryPercent float64) (map[string]int, float64, error) {
	_, srvs, err := c.servers(ctx)
	if err != nil {
		return nil, 0, err
	}
	old, err := c.weightsOf(srvs)
	if err != nil {
		return nil, 0, err
	}
	ws, wc, _ := Split(len(c.cfg.StableServers), len(c.cfg.CanaryServers), canaryPercent, c.cfg.BaseWeight)
	target := map[string]int{}
	for _, n := range c.cfg.StableServers {
		target[n] = ws
	}
	for _, n := range c.cfg.CanaryServers {
		target[n] = wc
	}

	var done []string
	for _, n := range c.writeOrder(old, target) {
		if old[n] == target[n] {
			continue
		}
		if err := c.setWeight(ctx, n, target[n]); err != nil {
			return nil, 0, c.rollback(ctx, old, done, err)
		}
		done = append(done, n)
	}
	got, err := c.waitLive(ctx, target)
	if err != nil {
		return nil, 0, c.rollback(ctx, old, done, err)
	}
	return got, share(got, c.cfg.CanaryServers), nil
}

// liveWaitLimit bounds how long Shift waits for HAProxy's runtime to show the weights it wrote: at once
// when the API applied them through the runtime socket, after a reload otherwise.
const liveWaitLimit = 5 * time.Second

// waitLive reads the weights HAProxy's runtime uses (its stats) until they are target, and returns them.
func (c *Client) waitLive(ctx context.Context, target map[string]int) (map[string]int, error) {
	deadline := time.Now().Add(liveWaitLimit)
	for {
		live, err := c.live(ctx)
		var got map[string]int
		if err == nil {
			got = make(map[string]int, len(target))
			same := true
			for n, w := range target {
				st := live[n]
				if st == nil || st.Weight == nil {
					same = false
					continue
				}
				got[n] = int(*st.Weight)
				if got[n] != w {
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
			return nil, fmt.Errorf("haproxy: HAProxy does not run the weights written to backend %q: live %s, written %s: check that HAProxy runs and its Data Plane API can reach its runtime socket",
				c.cfg.Backend, formatWeights(got), formatWeights(target))
		}
		time.Sleep(c.cfg.PollInterval / 5)
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

// live reads the backend's server statistics from HAProxy's runtime, by server name.
func (c *Client) live(ctx context.Context) (map[string]*models.NativeStatStats, error) {
	var stats models.NativeStats
	q := url.Values{"type": {"server"}, "parent": {c.cfg.Backend}}
	if _, err := c.do(ctx, http.MethodGet, "/services/haproxy/stats/native", q, nil, &stats); err != nil {
		return nil, c.explain(err, fmt.Sprintf("statistics of backend %q", c.cfg.Backend))
	}
	out := map[string]*models.NativeStatStats{}
	for _, coll := range stats {
		if coll.Error != "" {
			return nil, fmt.Errorf("haproxy: statistics of backend %q: %s", c.cfg.Backend, coll.Error)
		}
		for _, st := range coll.Stats {
			if st.Stats != nil && st.BackendName == c.cfg.Backend {
				out[st.Name] = st.Stats
			}
		}
	}
	return out, nil
}

// writeOrder returns the servers in the order to write them: canary group first unless writing stable
// first keeps the intermediate share closer to the range between the old and the new share.
func (c *Client) writeOrder(old, target map[string]int) []string {
	canaryFirst := append(append([]string{}, c.cfg.CanaryServers...), c.cfg.StableServers...)
	stableFirst := append(append([]string{}, c.cfg.StableServers...), c.cfg.CanaryServers...)
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
	from, to := share(old, c.cfg.CanaryServers), share(target, c.cfg.CanaryServers)
	lo, hi := min(from, to), max(from, to)
	outside := func(s float64) float64 { return max(lo-s, s-hi, 0) }
	// An all-zero intermediate (every weight 0) would stop traffic altogether: never choose it.
	viaCanary := mid(c.cfg.CanaryServers)
	viaStable := mid(c.cfg.StableServers)
	if total(viaCanary) == 0 {
		return stableFirst
	}
	if total(viaStable) != 0 && outside(share(viaStable, c.cfg.CanaryServers)) < outside(share(viaCanary, c.cfg.CanaryServers)) {
		return stableFirst
	}
	return canaryFirst
}

func total(w map[string]int) int {
	t := 0
	for _, v := range w {
		t += v
	}
	return t
}

// rollback puts back the old weights of the servers in done after cause stopped a shift.
func (c *Client) rollback(ctx context.Context, old map[string]int, done []string, cause error) error {
	if len(done) == 0 {
		return fmt.Errorf("%w (no weight was changed)", cause)
	}
	var failed []string
	for i := len(done) - 1; i >= 0; i-- {
		n := done[i]
		if err := c.setWeight(context.WithoutCancel(ctx), n, old[n]); err != nil {
			failed = append(failed, n)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w; putting back the old weights failed for %s: HAProxy is left with a partial split, check backend %q", cause, strings.Join(failed, ", "), c.cfg.Backend)
	}
	return fmt.Errorf("%w (the old weights were put back)", cause)
}

// WaitUp blocks until every server of group is UP in HAProxy's runtime: its health checks have run and
// pass (a server whose first check is still pending does not count) and it is not in maintenance. ctx
// bounds the wait; its error names the servers still down and their state.
func (c *Client) WaitUp(ctx context.Context, group string) error {
	names, err := c.group(group)
	if err != nil {
		return err
	}
	var down []string // as of the last successful look
	for {
		live, err := c.live(ctx)
		if err == nil {
			down = down[:0]
			for _, n := range names {
				st := live[n]
				switch {
				case st == nil:
					down = append(down, n+" (missing)")
				case st.Status == "no check":
				// HAProxy prefixes the check status with "* " while a check runs; "INI" means no check
				// has finished yet, and a server starts out UP until its first check says otherwise.
				case st.Status != "UP" || strings.TrimPrefix(st.CheckStatus, "* ") == "INI" || st.CheckStatus == "":
					down = append(down, fmt.Sprintf("%s (%s, check %s)", n, st.Status, st.CheckStatus))
				}
			}
			if len(down) == 0 {
				return nil
			}
		} else if errors.Is(err, ErrUnauthorized) {
			return err
		}
		select {
		case <-ctx.Done():
			if len(down) > 0 {
				return fmt.Errorf("haproxy: %s servers of backend %q not up: %s: %w", group, c.cfg.Backend, strings.Join(down, ", "), ctx.Err())
			}
			return fmt.Errorf("haproxy: waiting for the %s servers of backend %q: %w (last error: %v)", group, c.cfg.Backend, ctx.Err(), err)
		case <-time.After(c.cfg.PollInterval):
		}
	}
}

// Drain blocks until the servers of group have no current sessions. ctx bounds the wait; its error names
// the servers with sessions left.
func (c *Client) Drain(ctx context.Context, group string) error {
	names, err := c.group(group)
	if err != nil {
		return err
	}
	for {
		live, err := c.live(ctx)
		var open []string
		if err == nil {
			for _, n := range names {
				if st := live[n]; st != nil && st.Scur != nil && *st.Scur > 0 {
					open = append(open, fmt.Sprintf("%s (%d sessions)", n, *st.Scur))
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
