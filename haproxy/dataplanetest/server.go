// Package dataplanetest is fridaymorning's stand-in for HAProxy's Data Plane API, v2 or v3, for tests
// and the local test bed, where the real dataplaneapi program cannot be installed. It serves the part of
// the API that fridaymorning uses against a real HAProxy, and behaves as the real one does:
//
//   - v2 (as dataplaneapi 2.9): client-native/v5 behind it and its models as JSON, paths under /v2,
//     configuration reads wrapped in {"_version","data"}.
//   - v3 (as dataplaneapi 3.3): client-native/v6 behind it and its models as JSON (v3 servers have
//     fields v5 lacks), paths under /v3 with the backend in the path, bare objects and arrays, the
//     runtime server endpoint taking a weight (3.3.1 and later) or ignoring it (Config.NoRuntimeWeights,
//     as 3.3.0 and earlier do).
//
// Both: the configuration `version` check (409 when stale, 400 when neither version nor transaction is
// given, 422 for a body the schema refuses), changes the runtime can apply (weight, address, port,
// maintenance, agent) applied through the runtime socket without a reload (200) and also written to the
// configuration file, anything else written and a reload requested (202 with a Reload-ID header), a
// Configuration-Version header on every response, and 404 for the other major's paths.
package dataplanetest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/haproxytech/client-native/v5/configuration"
	cfgopts "github.com/haproxytech/client-native/v5/configuration/options"
	nativeerrors "github.com/haproxytech/client-native/v5/errors"
	"github.com/haproxytech/client-native/v5/models"
	"github.com/haproxytech/client-native/v5/runtime"
	rtopts "github.com/haproxytech/client-native/v5/runtime/options"
	configuration6 "github.com/haproxytech/client-native/v6/configuration"
	runtime6 "github.com/haproxytech/client-native/v6/runtime"
)

// Config says which HAProxy the server drives and who may use it.
type Config struct {
	// ConfigFile is HAProxy's configuration file; edits are written to it.
	ConfigFile string
	// HAProxyBin is the haproxy binary, used to validate configurations (default "haproxy").
	HAProxyBin string
	// RuntimeSocket is HAProxy's admin stats socket.
	RuntimeSocket string
	// MasterSocket is the master CLI socket, used to reload HAProxy when a change needs it.
	MasterSocket string
	// TransactionsDir holds client-native's transaction files (default: beside ConfigFile).
	TransactionsDir string
	// User and Password are the basic-auth credentials every request must carry.
	User, Password string
	// APIVersion is what /info reports as the API's version (default: a 2.9 or 3.3 version string).
	APIVersion string
	// Major is the API served: 2 (default) under /v2, or 3 under /v3.
	Major int
	// NoRuntimeWeights makes the v3 runtime server endpoint ignore weights, as dataplaneapi before
	// 3.3.1 does: it answers 200 with no weight in the server it returns.
	NoRuntimeWeights bool
}

// Server serves the Data Plane API subset. It implements http.Handler.
type Server struct {
	cfg Config
	// conf and rt are client-native v5's, for v2; conf6 and rt6 v6's, for v3.
	conf  configuration.Configuration
	rt    runtime.Runtime
	conf6 configuration6.Configuration
	rt6   runtime6.Runtime
	mux   *http.ServeMux
	// mu serializes configuration changes: client-native's parser is not meant for concurrent edits.
	mu      sync.Mutex
	reloads atomic.Int64
	// reloadMu guards pendingReload, the ID of the reload waiting for more changes; reloadRun
	// serializes reloads.
	reloadMu      sync.Mutex
	pendingReload string
	reloadRun     sync.Mutex
}

// New connects to HAProxy's configuration file and runtime socket and returns the server.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.ConfigFile == "" || cfg.RuntimeSocket == "" {
		return nil, errors.New("dataplanetest: ConfigFile and RuntimeSocket are required")
	}
	if cfg.HAProxyBin == "" {
		cfg.HAProxyBin = "haproxy"
	}
	if cfg.TransactionsDir == "" {
		cfg.TransactionsDir = filepath.Join(filepath.Dir(cfg.ConfigFile), "transactions")
	}
	if cfg.Major == 0 {
		cfg.Major = 2
	}
	if cfg.APIVersion == "" {
		cfg.APIVersion = "v2.9.9 fridaymorning-dataplanetest"
		if cfg.Major == 3 {
			cfg.APIVersion = "v3.3.1 fridaymorning-dataplanetest"
			if cfg.NoRuntimeWeights {
				cfg.APIVersion = "v3.3.0 fridaymorning-dataplanetest"
			}
		}
	}
	if err := os.MkdirAll(cfg.TransactionsDir, 0o700); err != nil {
		return nil, fmt.Errorf("dataplanetest: %w", err)
	}
	switch cfg.Major {
	case 2:
		return newV2(ctx, cfg)
	case 3:
		return newV3(ctx, cfg)
	}
	return nil, fmt.Errorf("dataplanetest: Major %d: want 2 or 3", cfg.Major)
}

// notFound answers what the API does not serve, as go-swagger's router does.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("path %s was not found", r.URL.Path))
}

func newV2(ctx context.Context, cfg Config) (*Server, error) {
	conf, err := configuration.New(ctx,
		cfgopts.ConfigurationFile(cfg.ConfigFile),
		cfgopts.HAProxyBin(cfg.HAProxyBin),
		cfgopts.TransactionsDir(cfg.TransactionsDir),
		cfgopts.Backups(0),
	)
	if err != nil {
		return nil, fmt.Errorf("dataplanetest: configuration client for %s: %w", cfg.ConfigFile, err)
	}
	rt, err := runtime.New(ctx, rtopts.Socket(cfg.RuntimeSocket))
	if err != nil {
		return nil, fmt.Errorf("dataplanetest: runtime client for %s: %w", cfg.RuntimeSocket, err)
	}
	s := &Server{cfg: cfg, conf: conf, rt: rt, mux: http.NewServeMux()}
	const cfgPath = "/v2/services/haproxy/configuration"
	s.mux.HandleFunc("GET /v2/info", s.info)
	s.mux.HandleFunc("GET "+cfgPath+"/version", s.versionHandler)
	s.mux.HandleFunc("GET "+cfgPath+"/backends", s.backends)
	s.mux.HandleFunc("GET "+cfgPath+"/backends/{name}", s.backend)
	s.mux.HandleFunc("GET "+cfgPath+"/servers", s.servers)
	s.mux.HandleFunc("GET "+cfgPath+"/servers/{name}", s.server)
	s.mux.HandleFunc("PUT "+cfgPath+"/servers/{name}", s.replaceServer)
	s.mux.HandleFunc("GET /v2/services/haproxy/runtime/servers", s.runtimeServers)
	s.mux.HandleFunc("GET /v2/services/haproxy/runtime/servers/{name}", s.runtimeServer)
	s.mux.HandleFunc("GET /v2/services/haproxy/stats/native", s.stats)
	s.mux.HandleFunc("/", notFound)
	return s, nil
}

// version is the configuration's version, in transaction tx if not "".
func (s *Server) version(tx string) (int64, error) {
	if s.conf6 != nil {
		return s.conf6.GetVersion(tx)
	}
	return s.conf.GetVersion(tx)
}

// Reloads reports how many times the server has reloaded HAProxy.
func (s *Server) Reloads() int64 { return s.reloads.Load() }

// ServeHTTP checks basic auth, then serves the request with a Configuration-Version header on the
// response, as the real API's middleware does.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(s.cfg.User)) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.Password)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="HAProxy Data Plane API"`)
		writeError(w, http.StatusUnauthorized, "unauthenticated for invalid credentials")
		return
	}
	s.mux.ServeHTTP(&versionWriter{ResponseWriter: w, s: s, tx: r.URL.Query().Get("transaction_id")}, r)
}

// versionWriter stamps the configuration version on the response when its header is written.
type versionWriter struct {
	http.ResponseWriter
	s      *Server
	tx     string
	header bool
}

func (v *versionWriter) WriteHeader(code int) {
	if !v.header {
		v.header = true
		if ver, err := v.s.version(v.tx); err == nil {
			v.Header().Set("Configuration-Version", strconv.FormatInt(ver, 10))
		}
	}
	v.ResponseWriter.WriteHeader(code)
}

func (v *versionWriter) Write(b []byte) (int, error) {
	if !v.header {
		v.WriteHeader(http.StatusOK)
	}
	return v.ResponseWriter.Write(b)
}

func writeJSON(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// apiError is the error body of both majors (models.Error of v5 and v6 alike).
type apiError struct {
	Code    int64  `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, &apiError{Code: int64(code), Message: msg})
}

// writeConfError answers err the way the real API's HandleError maps client-native errors to statuses.
func writeConfError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var ce *configuration.ConfError
	if errors.As(err, &ce) {
		switch ce.Err() {
		case configuration.ErrObjectDoesNotExist:
			code = http.StatusNotFound
		case configuration.ErrObjectAlreadyExists, configuration.ErrVersionMismatch, configuration.ErrTransactionAlreadyExists:
			code = http.StatusConflict
		case configuration.ErrObjectIndexOutOfRange, configuration.ErrValidationError, configuration.ErrBothVersionTransaction,
			configuration.ErrNoVersionTransaction, configuration.ErrNoParentSpecified, configuration.ErrParentDoesNotExist,
			configuration.ErrTransactionDoesNotExist, configuration.ErrGeneralError:
			code = http.StatusBadRequest
		}
	}
	writeError(w, code, err.Error())
}

// dataEnvelope is the v2 API's wrapper of configuration reads.
type dataEnvelope struct {
	Version int64 `json:"_version"`
	Data    any   `json:"data"`
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	host, _ := os.Hostname()
	now := time.Now().Unix()
	writeJSON(w, http.StatusOK, &models.Info{
		API:    &models.InfoAPI{Version: s.cfg.APIVersion, BuildDate: strfmt.DateTime(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))},
		System: &models.InfoSystem{Hostname: host, Time: now},
	})
}

func (s *Server) versionHandler(w http.ResponseWriter, r *http.Request) {
	v, err := s.version(r.URL.Query().Get("transaction_id"))
	if err != nil {
		writeConfError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) backends(w http.ResponseWriter, r *http.Request) {
	v, bcks, err := s.conf.GetBackends(r.URL.Query().Get("transaction_id"))
	if err != nil {
		writeConfError(w, err)
		return
	}
	if bcks == nil {
		bcks = models.Backends{}
	}
	writeJSON(w, http.StatusOK, dataEnvelope{v, bcks})
}

func (s *Server) backend(w http.ResponseWriter, r *http.Request) {
	v, b, err := s.conf.GetBackend(r.PathValue("name"), r.URL.Query().Get("transaction_id"))
	if err != nil {
		writeConfError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, dataEnvelope{v, b})
}

// parent reads the server's parent from ?backend= or ?parent_type=&parent_name=. Like the real API, a
// request with neither is an unclassified error, answered 500.
func parent(r *http.Request) (string, string, error) {
	q := r.URL.Query()
	if b := q.Get("backend"); b != "" {
		return "backend", b, nil
	}
	if q.Get("parent_type") == "" {
		return "", "", errors.New("parentType empty")
	}
	if q.Get("parent_name") == "" {
		return "", "", errors.New("parentName empty")
	}
	return q.Get("parent_type"), q.Get("parent_name"), nil
}

func (s *Server) servers(w http.ResponseWriter, r *http.Request) {
	pType, pName, err := parent(r)
	if err != nil {
		writeConfError(w, err)
		return
	}
	v, srvs, err := s.conf.GetServers(pType, pName, r.URL.Query().Get("transaction_id"))
	if err != nil {
		// The real API answers a missing parent with an empty list, not an error.
		var ce *configuration.ConfError
		if errors.As(err, &ce) && ce.Is(configuration.ErrParentDoesNotExist) {
			writeJSON(w, http.StatusOK, dataEnvelope{v, models.Servers{}})
			return
		}
		writeConfError(w, err)
		return
	}
	if srvs == nil {
		srvs = models.Servers{}
	}
	writeJSON(w, http.StatusOK, dataEnvelope{v, srvs})
}

func (s *Server) server(w http.ResponseWriter, r *http.Request) {
	pType, pName, err := parent(r)
	if err != nil {
		writeConfError(w, err)
		return
	}
	v, srv, err := s.conf.GetServer(r.PathValue("name"), pType, pName, r.URL.Query().Get("transaction_id"))
	if err != nil {
		writeConfError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, dataEnvelope{v, srv})
}

// replaceServer is PUT .../servers/{name}: edit the configuration (checking the version), then apply
// what the runtime API can apply without a reload, or reload.
func (s *Server) replaceServer(w http.ResponseWriter, r *http.Request) {
	tx, version, forceReload, ok := writeParams(w, r)
	if !ok {
		return
	}
	var data models.Server
	if !decodeBody(w, r, &data) {
		return
	}
	pType, pName, err := parent(r)
	if err != nil {
		writeConfError(w, err)
		return
	}
	name := r.PathValue("name")

	s.mu.Lock()
	defer s.mu.Unlock()
	_, ondisk, err := s.conf.GetServer(name, pType, pName, tx)
	if err != nil {
		writeConfError(w, err)
		return
	}
	if err := s.conf.EditServer(name, pType, pName, &data, tx, version); err != nil {
		writeConfError(w, err)
		return
	}
	if tx != "" {
		writeJSON(w, http.StatusAccepted, &data)
		return
	}
	s.finishWrite(w, applyAtRuntime(s.rt, pName, &data, ondisk), forceReload, &data)
}

// finishWrite answers a configuration change made outside a transaction: 200 when the runtime socket
// applied it (or nothing needs applying), else a reload: done before answering 200 with force_reload,
// or requested and answered 202 with its Reload-ID, as the real API's reload agent does.
func (s *Server) finishWrite(w http.ResponseWriter, reload, forceReload bool, data any) {
	if !reload {
		writeJSON(w, http.StatusOK, data)
		return
	}
	if forceReload {
		if err := s.reload(); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, data)
		return
	}
	w.Header().Set("Reload-ID", s.requestReload())
	writeJSON(w, http.StatusAccepted, data)
}

// runtimeFields are the server fields the runtime API can change without a reload, by JSON name.
var runtimeFields = map[string]bool{
	"weight": true, "address": true, "port": true, "maintenance": true,
	"agent-check": true, "agent-addr": true, "agent-send": true, "health_check_port": true,
}

// serverRuntime is what applyAtRuntime needs of a runtime client: client-native v5's and v6's alike.
type serverRuntime interface {
	SetServerWeight(backend, server, weight string) error
	SetServerAddr(backend, server, ip string, port int) error
	SetServerState(backend, server, state string) error
	EnableAgentCheck(backend, server string) error
	DisableAgentCheck(backend, server string) error
	SetServerAgentAddr(backend, server, addr string) error
	SetServerAgentSend(backend, server, send string) error
	SetServerCheckPort(backend, server string, port int) error
}

// applyAtRuntime applies the difference between data and ondisk (server models of either major) through
// the runtime socket and reports whether a reload is still needed: when a field outside runtimeFields
// changed, or a runtime command failed. Nothing changed needs nothing. It works on the JSON of the
// models, as the real API's changeThroughRuntimeAPI works on their fields.
func applyAtRuntime(rt serverRuntime, backend string, data, ondisk any) (reload bool) {
	changed, err := diffJSON(data, ondisk)
	if err != nil {
		return true
	}
	for _, f := range changed {
		if !runtimeFields[f] {
			return true
		}
	}
	m, err := toMap(data)
	if err != nil {
		return true
	}
	str := func(k string) string { v, _ := m[k].(string); return v }
	num := func(k string) int { v, _ := m[k].(float64); return int(v) }
	name := str("name")
	addrDone := false
	for _, f := range changed {
		var err error
		switch f {
		case "weight":
			err = rt.SetServerWeight(backend, name, strconv.Itoa(num("weight")))
		case "address", "port":
			if addrDone {
				continue
			}
			addrDone = true
			err = rt.SetServerAddr(backend, name, str("address"), num("port"))
		case "maintenance":
			state := "ready"
			if str("maintenance") == "enabled" {
				state = "maint"
			}
			err = rt.SetServerState(backend, name, state)
		case "agent-check":
			switch str("agent-check") {
			case "enabled":
				err = rt.EnableAgentCheck(backend, name)
			case "disabled":
				err = rt.DisableAgentCheck(backend, name)
			}
		case "agent-addr":
			err = rt.SetServerAgentAddr(backend, name, str("agent-addr"))
		case "agent-send":
			err = rt.SetServerAgentSend(backend, name, str("agent-send"))
		case "health_check_port":
			if _, ok := m["health_check_port"]; ok {
				err = rt.SetServerCheckPort(backend, name, num("health_check_port"))
			}
		}
		if err != nil {
			return true
		}
	}
	return false
}

func toMap(v any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	return m, json.Unmarshal(raw, &m)
}

// diffJSON lists the top-level JSON fields whose values differ between a and b.
func diffJSON(a, b any) ([]string, error) {
	ma, err := toMap(a)
	if err != nil {
		return nil, err
	}
	mb, err := toMap(b)
	if err != nil {
		return nil, err
	}
	var out []string
	for k, va := range ma {
		if !reflect.DeepEqual(va, mb[k]) {
			out = append(out, k)
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			out = append(out, k)
		}
	}
	return out, nil
}

// reloadDelay is how long a requested reload waits for more changes to join it, as the real API's
// reload agent does with its reload_delay (5 s there; short here, for tests).
const reloadDelay = 100 * time.Millisecond

// requestReload schedules a reload of HAProxy and returns its ID: changes requested while one waits
// join it.
func (s *Server) requestReload() string {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.pendingReload != "" {
		return s.pendingReload
	}
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	s.pendingReload = id
	go func() {
		time.Sleep(reloadDelay)
		s.reloadMu.Lock()
		s.pendingReload = ""
		s.reloadMu.Unlock()
		_ = s.reload()
	}()
	return id
}

// reload asks HAProxy's master process to reload the configuration file, and waits until the master
// answers again (it re-executes itself on a reload), so that reloads never overlap.
func (s *Server) reload() error {
	if s.cfg.MasterSocket == "" {
		return errors.New("cannot reload: no master socket configured")
	}
	s.reloadRun.Lock()
	defer s.reloadRun.Unlock()
	if _, err := cli(s.cfg.MasterSocket, "reload"); err != nil {
		return fmt.Errorf("cannot reload: %w", err)
	}
	s.reloads.Add(1)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if out, err := cli(s.cfg.MasterSocket, "show proc"); err == nil && strings.Contains(out, "worker") {
			return nil
		}
	}
	return errors.New("reloaded, but the master CLI did not come back within 10s")
}

func (s *Server) runtimeServers(w http.ResponseWriter, r *http.Request) {
	backend := r.URL.Query().Get("backend")
	rs, err := s.rt.GetServersState(backend)
	if err != nil {
		writeConfError(w, err)
		return
	}
	if rs == nil {
		rs = models.RuntimeServers{}
	}
	writeJSON(w, http.StatusOK, rs)
}

func (s *Server) runtimeServer(w http.ResponseWriter, r *http.Request) {
	backend, name := r.URL.Query().Get("backend"), r.PathValue("name")
	rs, err := s.rt.GetServerState(backend, name)
	if err != nil {
		if errors.Is(err, nativeerrors.ErrNotFound) || strings.Contains(err.Error(), "not found") {
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
		writeConfError(w, err)
		return
	}
	if rs == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Runtime server %s not found in backend %s", name, backend))
		return
	}
	writeJSON(w, http.StatusOK, rs)
}

// statsQueryOK checks the filters of a statistics request as the real API does, answering 400 if wrong.
func statsQueryOK(w http.ResponseWriter, q url.Values) bool {
	if q.Has("name") {
		if q.Get("type") == "" {
			writeError(w, http.StatusBadRequest, "Type required when filtering by name")
			return false
		}
		if q.Get("type") == "server" && q.Get("parent") == "" {
			writeError(w, http.StatusBadRequest, "Parent backend required when filtering by server")
			return false
		}
	}
	return true
}

// keepStat reports whether an object of the statistics passes the request's type, name and parent.
func keepStat(q url.Values, name, typ, backend string) bool {
	qt, qn, qp := q.Get("type"), q.Get("name"), q.Get("parent")
	switch {
	case q.Has("name") && typ == "server":
		return name == qn && typ == qt && backend == qp
	case q.Has("name"):
		return name == qn && typ == qt
	case qt == "server" && qp != "":
		return typ == qt && backend == qp
	case qt != "":
		return typ == qt
	}
	return true
}

// stats is GET /v2/services/haproxy/stats/native: an array of native_stats, one per runtime API.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !statsQueryOK(w, q) {
		return
	}
	all := s.rt.GetStats()
	failed := false
	for _, coll := range all {
		if coll.Error != "" {
			failed = true
			continue
		}
		kept := make([]*models.NativeStat, 0, len(coll.Stats))
		for _, st := range coll.Stats {
			if keepStat(q, st.Name, st.Type, st.BackendName) {
				kept = append(kept, st)
			}
		}
		coll.Stats = kept
	}
	code := http.StatusOK
	if failed {
		code = http.StatusInternalServerError
	}
	writeJSON(w, code, all)
}
