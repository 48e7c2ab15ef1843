package haproxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/haproxytech/client-native/v5/models"
)

// dataplane reaches HAProxy through the Data Plane API v2. Weight changes go through
// PUT /services/haproxy/configuration/servers/{name} outside a transaction, which the API applies through
// the runtime socket without a reload and also writes to the configuration, so they survive reloads.
// Live state comes from /services/haproxy/stats/native.
type dataplane struct {
	cfg  Config
	base *url.URL
	http *http.Client
}

func newDataplane(cfg Config) (*dataplane, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("haproxy: url %q is not an http(s) URL of the Data Plane API, e.g. http://127.0.0.1:5555/v2: fix haproxy.url", cfg.URL)
	}
	if u.User != nil {
		return nil, errors.New("haproxy: haproxy.url must not carry credentials: set haproxy.user and the password (FRIDAYMORNING_DATAPLANE_PASSWORD or haproxy.password_file)")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("haproxy: reading haproxy.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("haproxy: haproxy.ca_file %s holds no PEM certificate", cfg.CAFile)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		hc = &http.Client{Transport: tr}
	}
	return &dataplane{cfg: cfg, base: u, http: hc}, nil
}

func (d *dataplane) String() string { return "Data Plane API at " + d.base.String() }

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
func (d *dataplane) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	u := *d.base
	u.Path += path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth(d.cfg.User, d.cfg.Password)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return fmt.Errorf("haproxy: Data Plane API at %s is not reachable: %w: %w: check haproxy.url (and haproxy.ca_file for https) and that the API runs", d.base, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("haproxy: reading the answer to %s %s: %w", method, path, err)
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
		return e
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("haproxy: %s %s answered %q, not the expected JSON: %w", method, path, truncate(string(raw)), err)
		}
	}
	return nil
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
	case errors.Is(err, ErrUnauthorized):
		return fmt.Errorf("haproxy: Data Plane API at %s rejected user %q (%w): check haproxy.user and the password (FRIDAYMORNING_DATAPLANE_PASSWORD or haproxy.password_file)", d.base, d.cfg.User, err)
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("haproxy: %s not found at %s (%w): check haproxy.backend and haproxy.stable_servers/canary_servers in fridaymorning.yaml", what, d.base, err)
	case errors.Is(err, ErrUnreachable):
		return err
	}
	return fmt.Errorf("haproxy: %s at %s: %w", what, d.base, err)
}

// envelope is the v2 API's wrapper of configuration reads.
type envelope[T any] struct {
	Version int64 `json:"_version"`
	Data    T     `json:"data"`
}

func (d *dataplane) backendQuery() url.Values { return url.Values{"backend": {d.cfg.Backend}} }

// check verifies that the API answers, accepts the credentials and has the backend.
func (d *dataplane) check(ctx context.Context) error {
	var info models.Info
	if err := d.do(ctx, http.MethodGet, "/info", nil, nil, &info); err != nil {
		return d.explain(err, "info")
	}
	var b envelope[models.Backend]
	if err := d.do(ctx, http.MethodGet, "/services/haproxy/configuration/backends/"+url.PathEscape(d.cfg.Backend), nil, nil, &b); err != nil {
		return d.explain(err, fmt.Sprintf("backend %q", d.cfg.Backend))
	}
	return nil
}

// servers reads the backend's servers as HAProxy runs them, from its statistics.
func (d *dataplane) servers(ctx context.Context) (map[string]ServerState, error) {
	var stats models.NativeStats
	q := url.Values{"type": {"server"}, "parent": {d.cfg.Backend}}
	if err := d.do(ctx, http.MethodGet, "/services/haproxy/stats/native", q, nil, &stats); err != nil {
		return nil, d.explain(err, fmt.Sprintf("statistics of backend %q", d.cfg.Backend))
	}
	out := map[string]ServerState{}
	for _, coll := range stats {
		if coll.Error != "" {
			return nil, fmt.Errorf("haproxy: statistics of backend %q: %s", d.cfg.Backend, coll.Error)
		}
		for _, st := range coll.Stats {
			if st.Stats != nil && st.BackendName == d.cfg.Backend && st.Type == "server" {
				out[st.Name] = stateOf(st.Name, st.Stats)
			}
		}
	}
	return out, nil
}

// setWeight writes one server's weight, retrying version conflicts after reading the version and the
// server again.
func (d *dataplane) setWeight(ctx context.Context, name string, weight int) error {
	w := int64(weight)
	return d.editServer(ctx, name, "the weight", func(s *models.Server) { s.Weight = &w })
}

// setMaint puts one server in maintenance or takes it out: a runtime-supported change too.
func (d *dataplane) setMaint(ctx context.Context, name string, maint bool) error {
	state := "disabled"
	if maint {
		state = "enabled"
	}
	return d.editServer(ctx, name, "maintenance", func(s *models.Server) { s.Maintenance = state })
}

// editServer changes one server's configuration with change, retrying version conflicts after reading
// the version and the server again.
func (d *dataplane) editServer(ctx context.Context, name, what string, change func(*models.Server)) error {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		var env envelope[*models.Server]
		if err := d.do(ctx, http.MethodGet, "/services/haproxy/configuration/servers/"+url.PathEscape(name), d.backendQuery(), nil, &env); err != nil {
			if errors.Is(err, ErrNotFound) {
				// HAProxy runs it, but the configuration has no such server: a server-template slot, whose
				// weight the Data Plane API v2 can only change for the whole template, with a reload.
				return fmt.Errorf("haproxy: server %q of backend %q is a server-template slot, and the Data Plane API v2 has no weights per slot: use haproxy.mode runtime (with haproxy.runtime_socket) for server-template groups: %w", name, d.cfg.Backend, err)
			}
			return d.explain(err, fmt.Sprintf("server %q in backend %q", name, d.cfg.Backend))
		}
		srv := env.Data
		if srv == nil {
			return fmt.Errorf("haproxy: server %q in backend %q: the API answered no server", name, d.cfg.Backend)
		}
		change(srv)
		q := d.backendQuery()
		q.Set("version", strconv.FormatInt(env.Version, 10))
		err := d.do(ctx, http.MethodPut, "/services/haproxy/configuration/servers/"+url.PathEscape(name), q, srv, nil)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			return d.explain(err, fmt.Sprintf("setting %s of server %q in backend %q", what, name, d.cfg.Backend))
		}
		lastErr = err
	}
	return d.explain(lastErr, fmt.Sprintf("setting %s of server %q in backend %q (the configuration kept changing under us)", what, name, d.cfg.Backend))
}

// configWeights reads the weights written in HAProxy's configuration, by server name.
func (d *dataplane) configWeights(ctx context.Context) (map[string]int, error) {
	var env envelope[models.Servers]
	if err := d.do(ctx, http.MethodGet, "/services/haproxy/configuration/servers", d.backendQuery(), nil, &env); err != nil {
		return nil, d.explain(err, fmt.Sprintf("servers of backend %q", d.cfg.Backend))
	}
	out := map[string]int{}
	for _, s := range env.Data {
		w := 1 // HAProxy's default weight
		if s.Weight != nil {
			w = int(*s.Weight)
		}
		out[s.Name] = w
	}
	return out, nil
}
