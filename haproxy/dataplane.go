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
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/fridaymorning/fridaymorning/internal/tlsca"
)

// dataplane reaches HAProxy through the Data Plane API, v2 (dataplaneapi 2.x) or v3 (3.x).
//
// Weights are written to a server's configuration outside a transaction: PUT of the whole server with
// the configuration version, which the API applies through the runtime socket without a reload (200) and
// also writes to the configuration, so they survive reloads. The server objects travel as raw JSON and
// only "weight" (or "maintenance") is replaced, so fields a model of another version would not know
// (v3 has many the v2 models lack) go back as they came and the write stays runtime-only.
//
// The objects and the configuration version are read once (one GET of the backend's servers) and kept:
// each write's answer carries the next version (Configuration-Version), so a shift costs one PUT per
// server written and the statistics reads. A 409 (someone else changed the configuration) drops what
// was kept, and the write is tried again on a fresh read.
//
// A server-template slot has no configuration object of its own. Through v3, its weight goes to the
// runtime endpoint, which takes a weight from dataplaneapi 3.3.1 on (earlier 3.x answers 200 and ignores
// it: the answer has no weight); where it does not, the template's configured weight is written, which
// gives every slot of the template that weight, after a reload.
type dataplane struct {
	cfg  Config
	base *url.URL // as configured
	http *http.Client

	mu    sync.Mutex
	api   *url.URL // base with /v2 or /v3, once known
	major int      // 2 or 3, once known
	// Kept configuration: server objects by name and the version they are at (0: not read).
	srv     map[string]map[string]json.RawMessage
	version int64
	// runtimeWeight: 0 not known yet, 1 the v3 runtime endpoint takes weights, -1 it ignores them.
	runtimeWeight int
}

// majorSuffix is a URL path ending in an API major version.
var majorSuffix = regexp.MustCompile(`/v([0-9]+)$`)

func newDataplane(cfg Config) (*dataplane, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("haproxy: url %q is not an http(s) URL of the Data Plane API, e.g. http://127.0.0.1:5555/v3: fix haproxy.url", cfg.URL)
	}
	if u.User != nil {
		return nil, errors.New("haproxy: haproxy.url must not carry credentials: set haproxy.user and the password (FRIDAYMORNING_DATAPLANE_PASSWORD or haproxy.password_file)")
	}
	d := &dataplane{cfg: cfg, base: u}
	if m := majorSuffix.FindStringSubmatch(u.Path); m != nil {
		switch m[1] {
		case "2", "3":
			d.major, _ = strconv.Atoi(m[1])
			d.api = u
		default:
			return nil, fmt.Errorf("haproxy: haproxy.url %s names the Data Plane API v%s: fridaymorning speaks v2 (dataplaneapi 2.x) and v3 (3.x): end the URL in /v3 or /v2, or leave the version out to have it found", u, m[1])
		}
	}
	d.http = cfg.HTTPClient
	if d.http == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 4
		if cfg.CAFile != "" {
			tc, err := tlsca.Config(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("haproxy: haproxy.ca_file: %w", err)
			}
			tr.TLSClientConfig = tc
		}
		d.http = &http.Client{Transport: tr}
	}
	return d, nil
}

func (d *dataplane) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.api != nil {
		return fmt.Sprintf("Data Plane API v%d at %s", d.major, d.api)
	}
	return "Data Plane API at " + d.base.String()
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

// request is one call of the API.
type request struct {
	method, path string
	query        url.Values
	body         any
}

// send makes one request to root+path and decodes a 2xx JSON answer into out, returning the answer's
// headers. Errors name the URL, never the password.
func (d *dataplane) send(ctx context.Context, root *url.URL, rq request, out any) (http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	u := *root
	u.Path += rq.path
	u.RawQuery = rq.query.Encode()
	var rd io.Reader
	if rq.body != nil {
		raw, err := json.Marshal(rq.body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(d.cfg.User, d.cfg.Password)
	req.Header.Set("Accept", "application/json")
	if rq.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("haproxy: Data Plane API at %s is not reachable: %w: %w: check haproxy.url (and haproxy.ca_file for https) and that the API runs", root, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("haproxy: reading the answer to %s %s: %w", rq.method, rq.path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{status: resp.StatusCode, message: strings.TrimSpace(string(raw))}
		var m struct {
			Message *string `json:"message"`
		}
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
			return resp.Header, fmt.Errorf("haproxy: %s %s answered %q, not the expected JSON: %w", rq.method, rq.path, truncate(string(raw)), err)
		}
	}
	return resp.Header, nil
}

// do sends rq to the API of the version it speaks, finding that version first if the URL does not say.
func (d *dataplane) do(ctx context.Context, rq request, out any) (http.Header, error) {
	root, _, err := d.resolve(ctx)
	if err != nil {
		return nil, err
	}
	return d.send(ctx, root, rq, out)
}

// infoAnswer is GET /info, alike in v2 and v3.
type infoAnswer struct {
	API *struct {
		Version string `json:"version"`
	} `json:"api"`
}

// resolve returns the API's root URL and major version: from the URL, or by asking /v3/info and then
// /v2/info under a URL that does not name it.
func (d *dataplane) resolve(ctx context.Context) (*url.URL, int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.api != nil {
		return d.api, d.major, nil
	}
	var found []string
	for _, major := range []int{3, 2} {
		root := *d.base
		root.Path += fmt.Sprintf("/v%d", major)
		var info infoAnswer
		_, err := d.send(ctx, &root, request{method: http.MethodGet, path: "/info"}, &info)
		switch {
		case err == nil && info.API != nil:
			d.api, d.major = &root, major
			return d.api, d.major, nil
		case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrUnreachable):
			return nil, 0, d.explain(err, "info")
		case err == nil:
			found = append(found, fmt.Sprintf("GET %s/info answered no API version", root.String()))
		default:
			found = append(found, fmt.Sprintf("GET %s/info: %v", root.String(), err))
		}
	}
	return nil, 0, fmt.Errorf("haproxy: no Data Plane API v3 or v2 at %s (%s): set haproxy.url to the API's base, e.g. http://127.0.0.1:5555/v3", d.base, strings.Join(found, "; "))
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// explain turns a request's error into one that says what to do.
func (d *dataplane) explain(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnauthorized) && d.cfg.Password == "":
		return fmt.Errorf("haproxy: no password set for the Data Plane API at %s, which wants one (%w): set FRIDAYMORNING_DATAPLANE_PASSWORD, or haproxy.password_file to a file that holds it (and haproxy.user)", d.base, ErrUnauthorized)
	case errors.Is(err, ErrUnauthorized):
		return fmt.Errorf("haproxy: Data Plane API at %s rejected user %q (%w): check haproxy.user and the password (FRIDAYMORNING_DATAPLANE_PASSWORD or haproxy.password_file)", d.base, d.cfg.User, err)
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("haproxy: %s not found at %s (%w): check haproxy.backend and haproxy.stable_servers/canary_servers in fridaymorning.yaml", what, d.base, err)
	case errors.Is(err, ErrUnreachable):
		return err
	}
	return fmt.Errorf("haproxy: %s at %s: %w", what, d.base, err)
}

// check verifies that the API answers, accepts the credentials, is of the version the URL names, and
// has the backend.
func (d *dataplane) check(ctx context.Context) error {
	root, major, err := d.resolve(ctx)
	if err != nil {
		return err
	}
	var info infoAnswer
	if _, err := d.send(ctx, root, request{method: http.MethodGet, path: "/info"}, &info); err != nil {
		if errors.Is(err, ErrNotFound) {
			return d.wrongMajor(ctx, major, err)
		}
		return d.explain(err, "info")
	}
	if _, err := d.send(ctx, root, request{method: http.MethodGet, path: "/services/haproxy/configuration/backends/" + url.PathEscape(d.cfg.Backend)}, nil); err != nil {
		return d.explain(err, fmt.Sprintf("backend %q", d.cfg.Backend))
	}
	return nil
}

// wrongMajor explains a 404 for /info under a URL that names major: which version answers instead.
func (d *dataplane) wrongMajor(ctx context.Context, major int, cause error) error {
	other := 5 - major // 2 ↔ 3
	root := *d.base
	root.Path = strings.TrimSuffix(root.Path, fmt.Sprintf("/v%d", major)) + fmt.Sprintf("/v%d", other)
	var info infoAnswer
	if _, err := d.send(ctx, &root, request{method: http.MethodGet, path: "/info"}, &info); err == nil && info.API != nil {
		return fmt.Errorf("haproxy: %s answers no Data Plane API v%d (GET /info: %w), but %s does (dataplaneapi %s): set haproxy.url to %s", d.base, major, cause, root.String(), info.API.Version, root.String())
	}
	return fmt.Errorf("haproxy: %s answers no Data Plane API v%d (GET /info: %w), nor v%d: check haproxy.url", d.base, major, cause, other)
}

// servers reads the backend's servers as HAProxy runs them, from its statistics: an array of
// per-process collections in v2, one collection in v3.
func (d *dataplane) servers(ctx context.Context) (map[string]ServerState, error) {
	root, major, err := d.resolve(ctx)
	if err != nil {
		return nil, err
	}
	rq := request{method: http.MethodGet, path: "/services/haproxy/stats/native", query: url.Values{"type": {"server"}, "parent": {d.cfg.Backend}}}
	var colls []nativeStats
	if major == 2 {
		_, err = d.send(ctx, root, rq, &colls)
	} else {
		var one nativeStats
		_, err = d.send(ctx, root, rq, &one)
		colls = []nativeStats{one}
	}
	if err != nil {
		return nil, d.explain(err, fmt.Sprintf("statistics of backend %q", d.cfg.Backend))
	}
	return serverStates(d.cfg.Backend, colls)
}

// serverPath is the configuration path of one server (name "") or of the backend's server list, and
// the query that goes with it.
func (d *dataplane) serverPath(major int, name string) (string, url.Values) {
	b := url.PathEscape(d.cfg.Backend)
	if major == 2 {
		p := "/services/haproxy/configuration/servers"
		if name != "" {
			p += "/" + url.PathEscape(name)
		}
		return p, url.Values{"backend": {d.cfg.Backend}}
	}
	p := "/services/haproxy/configuration/backends/" + b + "/servers"
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p, url.Values{}
}

// configVersion reads the version a v3 answer carries in its Configuration-Version header.
func configVersion(h http.Header) int64 {
	v, err := strconv.ParseInt(h.Get("Configuration-Version"), 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// loadServers reads the backend's server objects and the configuration version into the kept state.
// The caller holds d.mu.
func (d *dataplane) loadServers(ctx context.Context, root *url.URL, major int) error {
	path, q := d.serverPath(major, "")
	var list []map[string]json.RawMessage
	var version int64
	if major == 2 {
		var env struct {
			Version int64                        `json:"_version"`
			Data    []map[string]json.RawMessage `json:"data"`
		}
		if _, err := d.send(ctx, root, request{method: http.MethodGet, path: path, query: q}, &env); err != nil {
			return d.explain(err, fmt.Sprintf("servers of backend %q", d.cfg.Backend))
		}
		list, version = env.Data, env.Version
	} else {
		h, err := d.send(ctx, root, request{method: http.MethodGet, path: path, query: q}, &list)
		if err != nil {
			return d.explain(err, fmt.Sprintf("servers of backend %q", d.cfg.Backend))
		}
		version = configVersion(h)
	}
	if version == 0 {
		return fmt.Errorf("haproxy: the servers of backend %q at %s came without a configuration version: is this a Data Plane API v%d?", d.cfg.Backend, root, major)
	}
	d.srv = make(map[string]map[string]json.RawMessage, len(list))
	for _, s := range list {
		var name string
		if json.Unmarshal(s["name"], &name) == nil {
			d.srv[name] = s
		}
	}
	d.version = version
	return nil
}

// setWeights writes the weights one server at a time, in order; the caller reads them back (the API's
// answers are the configuration, not what HAProxy runs), so check is not used.
//
// The API applies a PUT at runtime only where it changes the configuration: a server whose runtime
// weight was set by hand on the admin socket, and whose configuration already has the weight wanted,
// would keep running the hand-set one. Such a server is first written its runtime weight (nothing
// changes at runtime), then the one wanted, which the API then applies.
func (d *dataplane) setWeights(ctx context.Context, changes []weightChange, _ []string) ([]string, map[string]ServerState, error) {
	var done []string
	for _, ch := range changes {
		if ch.from >= 0 && ch.from != ch.weight && d.configured(ctx, ch.name) == ch.weight {
			w, _ := json.Marshal(ch.from)
			if err := d.editServer(ctx, ch.name, "the weight", "weight", w); err != nil {
				return done, nil, err
			}
		}
		w, _ := json.Marshal(ch.weight)
		if err := d.editServer(ctx, ch.name, "the weight", "weight", w); err != nil {
			return done, nil, err
		}
		done = append(done, ch.name)
	}
	return done, nil, nil
}

// configured returns the weight of server name in the kept configuration (reading it if none is
// kept), or -1 when unknown: a template slot, or a read that failed (the write then says why).
func (d *dataplane) configured(ctx context.Context, name string) int {
	root, major, err := d.resolve(ctx)
	if err != nil {
		return -1
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.version == 0 {
		if err := d.loadServers(ctx, root, major); err != nil {
			return -1
		}
	}
	obj := d.srv[name]
	if obj == nil {
		return -1
	}
	return weightOf(obj)
}

// weightOf is the weight of a server's configuration object: HAProxy's default, 1, when it has none.
func weightOf(obj map[string]json.RawMessage) int {
	w := 1
	if raw, ok := obj["weight"]; ok {
		var n int
		if json.Unmarshal(raw, &n) == nil {
			w = n
		}
	}
	return w
}

// setMaint puts one server in maintenance or takes it out: a runtime-supported change too.
func (d *dataplane) setMaint(ctx context.Context, name string, maint bool) error {
	state := `"disabled"`
	if maint {
		state = `"enabled"`
	}
	return d.editServer(ctx, name, "maintenance", "maintenance", json.RawMessage(state))
}

// editServer sets one field of one server's configuration to value, keeping every other field as the
// API gave it, and retries version conflicts on a fresh read.
func (d *dataplane) editServer(ctx context.Context, name, what, field string, value json.RawMessage) error {
	root, major, err := d.resolve(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		// A name missing from servers read at the current version is a template slot: no re-read.
		if d.version == 0 {
			if err := d.loadServers(ctx, root, major); err != nil {
				return err
			}
		}
		obj := d.srv[name]
		if obj == nil {
			// HAProxy runs it, but the configuration has no such server: a server-template slot.
			return d.setSlot(ctx, root, major, name, what, field, value)
		}
		edited := make(map[string]json.RawMessage, len(obj)+1)
		for k, v := range obj {
			edited[k] = v
		}
		edited[field] = value
		path, q := d.serverPath(major, name)
		q.Set("version", strconv.FormatInt(d.version, 10))
		h, err := d.send(ctx, root, request{method: http.MethodPut, path: path, query: q, body: edited}, nil)
		if err == nil {
			d.srv[name] = edited
			d.version = configVersion(h) // 0 (not given) makes the next write read again
			return nil
		}
		d.srv, d.version = nil, 0
		if !errors.Is(err, ErrConflict) {
			return d.explain(err, fmt.Sprintf("setting %s of server %q in backend %q", what, name, d.cfg.Backend))
		}
		lastErr = err
	}
	return d.explain(lastErr, fmt.Sprintf("setting %s of server %q in backend %q (the configuration kept changing under us)", what, name, d.cfg.Backend))
}

// setSlot sets a field of a server-template slot. The caller holds d.mu.
func (d *dataplane) setSlot(ctx context.Context, root *url.URL, major int, name, what, field string, value json.RawMessage) error {
	if major == 2 {
		return fmt.Errorf("haproxy: server %q of backend %q is a server-template slot, and the Data Plane API v2 has no weights per slot: use the Data Plane API v3 (dataplaneapi 3.3.1 or later sets them at runtime), or haproxy.mode runtime (with haproxy.runtime_socket): %w", name, d.cfg.Backend, ErrNotFound)
	}
	runtimeField := field
	if field == "maintenance" {
		runtimeField = "admin_state"
		if string(value) == `"enabled"` {
			value = json.RawMessage(`"maint"`)
		} else {
			value = json.RawMessage(`"ready"`)
		}
	}
	if field == "maintenance" || d.runtimeWeight >= 0 {
		path := "/services/haproxy/runtime/backends/" + url.PathEscape(d.cfg.Backend) + "/servers/" + url.PathEscape(name)
		var got map[string]json.RawMessage
		_, err := d.send(ctx, root, request{method: http.MethodPut, path: path, body: map[string]json.RawMessage{runtimeField: value}}, &got)
		if err != nil {
			return d.explain(err, fmt.Sprintf("setting %s of server-template slot %q in backend %q", what, name, d.cfg.Backend))
		}
		if field == "maintenance" {
			return nil
		}
		// dataplaneapi 3.3.1 and later answer the server as it runs after the change, weight included;
		// earlier 3.x answer no weight, having ignored it.
		if w, ok := got["weight"]; ok {
			d.runtimeWeight = 1
			if !bytes.Equal(bytes.TrimSpace(w), value) {
				return fmt.Errorf("haproxy: the Data Plane API set the weight of server-template slot %q in backend %q to %s, not %s", name, d.cfg.Backend, w, value)
			}
			return nil
		}
		d.runtimeWeight = -1
	}
	return d.setTemplateWeight(ctx, root, name, value)
}

// setTemplateWeight writes the weight of the server template a slot belongs to: persistent, the same for
// every slot of the template, applied with a reload. The caller holds d.mu.
func (d *dataplane) setTemplateWeight(ctx context.Context, root *url.URL, slot string, value json.RawMessage) error {
	path := "/services/haproxy/configuration/backends/" + url.PathEscape(d.cfg.Backend) + "/server_templates"
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		var list []map[string]json.RawMessage
		h, err := d.send(ctx, root, request{method: http.MethodGet, path: path}, &list)
		if err != nil {
			return d.explain(err, fmt.Sprintf("server templates of backend %q", d.cfg.Backend))
		}
		var tmpl map[string]json.RawMessage
		var prefix string
		for _, t := range list {
			var p string
			if json.Unmarshal(t["prefix"], &p) == nil && slotOf(p, slot) {
				tmpl, prefix = t, p
			}
		}
		if tmpl == nil {
			return fmt.Errorf("haproxy: server %q of backend %q is neither a server nor a server-template slot in the configuration at %s: %w", slot, d.cfg.Backend, root, ErrNotFound)
		}
		if bytes.Equal(bytes.TrimSpace(tmpl["weight"]), value) {
			return nil // an earlier slot of the template set it
		}
		tmpl["weight"] = value
		q := url.Values{"version": {strconv.FormatInt(configVersion(h), 10)}}
		_, err = d.send(ctx, root, request{method: http.MethodPut, path: path + "/" + url.PathEscape(prefix), query: q, body: tmpl}, nil)
		if err == nil {
			d.srv, d.version = nil, 0
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			return d.explain(err, fmt.Sprintf("setting the weight of server template %q in backend %q (dataplaneapi before 3.3.1 has no per-slot weights)", prefix, d.cfg.Backend))
		}
		lastErr = err
	}
	return d.explain(lastErr, fmt.Sprintf("setting the weight of the server template of %q in backend %q (the configuration kept changing under us)", slot, d.cfg.Backend))
}

// slotOf reports whether slot is prefix followed by a number: a slot of the template with that prefix.
func slotOf(prefix, slot string) bool {
	n, ok := strings.CutPrefix(slot, prefix)
	if !ok || n == "" {
		return false
	}
	_, err := strconv.Atoi(n)
	return err == nil
}

// configWeights reads the weights written in HAProxy's configuration, by server name.
func (d *dataplane) configWeights(ctx context.Context) (map[string]int, error) {
	root, major, err := d.resolve(ctx)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.loadServers(ctx, root, major); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for name, s := range d.srv {
		out[name] = weightOf(s)
	}
	return out, nil
}
