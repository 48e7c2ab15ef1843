package dataplanetest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-openapi/strfmt"
	configuration6 "github.com/haproxytech/client-native/v6/configuration"
	cfgopts6 "github.com/haproxytech/client-native/v6/configuration/options"
	models6 "github.com/haproxytech/client-native/v6/models"
	runtime6 "github.com/haproxytech/client-native/v6/runtime"
	rtopts6 "github.com/haproxytech/client-native/v6/runtime/options"
)

// newV3 serves the Data Plane API v3 with client-native v6 behind it, as dataplaneapi 3.3 is built.
func newV3(ctx context.Context, cfg Config) (*Server, error) {
	conf, err := configuration6.New(ctx,
		cfgopts6.ConfigurationFile(cfg.ConfigFile),
		cfgopts6.HAProxyBin(cfg.HAProxyBin),
		cfgopts6.TransactionsDir(cfg.TransactionsDir),
		cfgopts6.Backups(0),
	)
	if err != nil {
		return nil, fmt.Errorf("dataplanetest: configuration client for %s: %w", cfg.ConfigFile, err)
	}
	rt, err := runtime6.New(ctx, rtopts6.Socket(cfg.RuntimeSocket))
	if err != nil {
		return nil, fmt.Errorf("dataplanetest: runtime client for %s: %w", cfg.RuntimeSocket, err)
	}
	s := &Server{cfg: cfg, conf6: conf, rt6: rt, mux: http.NewServeMux()}
	const cfgPath = "/v3/services/haproxy/configuration"
	const be = cfgPath + "/backends/{parent_name}"
	s.mux.HandleFunc("GET /v3/info", s.info)
	s.mux.HandleFunc("GET "+cfgPath+"/version", s.versionHandler)
	s.mux.HandleFunc("GET "+cfgPath+"/backends", s.backends3)
	s.mux.HandleFunc("GET "+cfgPath+"/backends/{name}", s.backend3)
	s.mux.HandleFunc("GET "+be+"/servers", s.servers3)
	s.mux.HandleFunc("GET "+be+"/servers/{name}", s.server3)
	s.mux.HandleFunc("PUT "+be+"/servers/{name}", s.replaceServer3)
	s.mux.HandleFunc("GET "+be+"/server_templates", s.serverTemplates3)
	s.mux.HandleFunc("GET "+be+"/server_templates/{prefix}", s.serverTemplate3)
	s.mux.HandleFunc("PUT "+be+"/server_templates/{prefix}", s.replaceServerTemplate3)
	s.mux.HandleFunc("GET /v3/services/haproxy/runtime/backends/{parent_name}/servers", s.runtimeServers3)
	s.mux.HandleFunc("GET /v3/services/haproxy/runtime/backends/{parent_name}/servers/{name}", s.runtimeServer3)
	s.mux.HandleFunc("PUT /v3/services/haproxy/runtime/backends/{parent_name}/servers/{name}", s.replaceRuntimeServer3)
	s.mux.HandleFunc("GET /v3/services/haproxy/stats/native", s.stats3)
	s.mux.HandleFunc("/", notFound)
	return s, nil
}

// writeConfError6 answers err as the real API's misc.HandleError maps client-native v6's errors.
func writeConfError6(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var ce *configuration6.ConfError
	if errors.As(err, &ce) {
		switch ce.Err() {
		case configuration6.ErrObjectDoesNotExist:
			code = http.StatusNotFound
		case configuration6.ErrObjectAlreadyExists, configuration6.ErrVersionMismatch, configuration6.ErrTransactionAlreadyExists:
			code = http.StatusConflict
		case configuration6.ErrObjectIndexOutOfRange, configuration6.ErrValidationError, configuration6.ErrBothVersionTransaction,
			configuration6.ErrNoVersionTransaction, configuration6.ErrNoParentSpecified, configuration6.ErrParentDoesNotExist,
			configuration6.ErrTransactionDoesNotExist, configuration6.ErrGeneralError:
			code = http.StatusBadRequest
		}
	} else if strings.Contains(err.Error(), "not found") {
		code = http.StatusNotFound
	}
	writeError(w, code, err.Error())
}

func (s *Server) backends3(w http.ResponseWriter, r *http.Request) {
	_, bcks, err := s.conf6.GetBackends(r.URL.Query().Get("transaction_id"))
	if err != nil {
		writeConfError6(w, err)
		return
	}
	if bcks == nil {
		bcks = models6.Backends{}
	}
	writeJSON(w, http.StatusOK, bcks)
}

func (s *Server) backend3(w http.ResponseWriter, r *http.Request) {
	_, b, err := s.conf6.GetBackend(r.PathValue("name"), r.URL.Query().Get("transaction_id"))
	if err != nil {
		writeConfError6(w, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// servers3 lists a backend's servers; a backend that does not exist has none (200 []), as
// HandleContainerGetError answers.
func (s *Server) servers3(w http.ResponseWriter, r *http.Request) {
	_, srvs, err := s.conf6.GetServers("backend", r.PathValue("parent_name"), r.URL.Query().Get("transaction_id"))
	if err != nil {
		var ce *configuration6.ConfError
		if !errors.As(err, &ce) || !ce.Is(configuration6.ErrParentDoesNotExist) {
			writeConfError6(w, err)
			return
		}
	}
	if srvs == nil {
		srvs = models6.Servers{}
	}
	writeJSON(w, http.StatusOK, srvs)
}

func (s *Server) server3(w http.ResponseWriter, r *http.Request) {
	_, srv, err := s.conf6.GetServer(r.PathValue("name"), "backend", r.PathValue("parent_name"), r.URL.Query().Get("transaction_id"))
	if err != nil {
		writeConfError6(w, err)
		return
	}
	writeJSON(w, http.StatusOK, srv)
}

// writeParams reads the query of a configuration write: transaction_id, version (422 if not an
// integer), force_reload (400 together with a transaction).
func writeParams(w http.ResponseWriter, r *http.Request) (tx string, version int64, forceReload, ok bool) {
	q := r.URL.Query()
	tx = q.Get("transaction_id")
	if raw := q.Get("version"); raw != "" {
		v, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("version in query must be of type integer: %q", raw))
			return "", 0, false, false
		}
		version = v
	}
	forceReload = q.Get("force_reload") == "true"
	if tx != "" && forceReload {
		writeError(w, http.StatusBadRequest, "Both force_reload and transaction specified, specify only one")
		return "", 0, false, false
	}
	return tx, version, forceReload, true
}

// decodeBody decodes and validates a JSON body as go-swagger does: 400 if it is no JSON of the
// model, 422 if the schema refuses it (a server without address, say).
func decodeBody(w http.ResponseWriter, r *http.Request, v interface{ Validate(strfmt.Registry) error }) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "parsing body body from \"\" failed, because "+err.Error())
		return false
	}
	if err := v.Validate(strfmt.Default); err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return false
	}
	return true
}

// replaceServer3 is PUT .../backends/{parent_name}/servers/{name}: as v2's, with v6 models.
func (s *Server) replaceServer3(w http.ResponseWriter, r *http.Request) {
	tx, version, forceReload, ok := writeParams(w, r)
	if !ok {
		return
	}
	var data models6.Server
	if !decodeBody(w, r, &data) {
		return
	}
	name, backend := r.PathValue("name"), r.PathValue("parent_name")
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ondisk, err := s.conf6.GetServer(name, "backend", backend, tx)
	if err != nil {
		writeConfError6(w, err)
		return
	}
	if err := s.conf6.EditServer(name, "backend", backend, &data, tx, version); err != nil {
		writeConfError6(w, err)
		return
	}
	if tx != "" {
		writeJSON(w, http.StatusAccepted, &data)
		return
	}
	s.finishWrite(w, applyAtRuntime(s.rt6, backend, &data, ondisk), forceReload, &data)
}

func (s *Server) serverTemplates3(w http.ResponseWriter, r *http.Request) {
	_, ts, err := s.conf6.GetServerTemplates(r.PathValue("parent_name"), r.URL.Query().Get("transaction_id"))
	if err != nil {
		writeConfError6(w, err)
		return
	}
	if ts == nil {
		ts = models6.ServerTemplates{}
	}
	writeJSON(w, http.StatusOK, ts)
}

func (s *Server) serverTemplate3(w http.ResponseWriter, r *http.Request) {
	_, t, err := s.conf6.GetServerTemplate(r.PathValue("prefix"), r.PathValue("parent_name"), r.URL.Query().Get("transaction_id"))
	if err != nil {
		writeConfError6(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// replaceServerTemplate3 edits a server template. The runtime API cannot change a template, so any
// change is a reload (202 with a Reload-ID), as in the real API.
func (s *Server) replaceServerTemplate3(w http.ResponseWriter, r *http.Request) {
	tx, version, forceReload, ok := writeParams(w, r)
	if !ok {
		return
	}
	var data models6.ServerTemplate
	if !decodeBody(w, r, &data) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.conf6.EditServerTemplate(r.PathValue("prefix"), r.PathValue("parent_name"), &data, tx, version); err != nil {
		writeConfError6(w, err)
		return
	}
	if tx != "" {
		writeJSON(w, http.StatusAccepted, &data)
		return
	}
	s.finishWrite(w, true, forceReload, &data)
}

// runtimeServer is models6.RuntimeServer with the weights dataplaneapi 3.3.1 added.
type runtimeServer struct {
	*models6.RuntimeServer
	Weight  *int64 `json:"weight,omitempty"`
	Iweight *int64 `json:"iweight,omitempty"`
	Uweight *int64 `json:"uweight,omitempty"`
}

// MarshalJSON keeps the embedded model's fields beside the weights (the model has its own MarshalJSON).
func (rs runtimeServer) MarshalJSON() ([]byte, error) {
	base, err := json.Marshal(rs.RuntimeServer)
	if err != nil {
		return nil, err
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(base, &m); err != nil {
		return nil, err
	}
	for k, v := range map[string]*int64{"weight": rs.Weight, "iweight": rs.Iweight, "uweight": rs.Uweight} {
		if v != nil {
			m[k] = json.RawMessage(strconv.FormatInt(*v, 10))
		}
	}
	return json.Marshal(m)
}

// withWeights adds the weights to runtime servers, unless the server emulates dataplaneapi before 3.3.1.
func (s *Server) withWeights(backend string, rss ...*models6.RuntimeServer) ([]runtimeServer, error) {
	out := make([]runtimeServer, len(rss))
	var weights map[string][2]int64
	if !s.cfg.NoRuntimeWeights {
		var err error
		if weights, err = s.serverWeights(backend); err != nil {
			return nil, err
		}
	}
	for i, rs := range rss {
		out[i] = runtimeServer{RuntimeServer: rs}
		if w, ok := weights[rs.Name]; ok {
			u, in := w[0], w[1]
			out[i].Weight, out[i].Uweight, out[i].Iweight = &u, &u, &in
		}
	}
	return out, nil
}

// serverWeights reads the user-set and initial weight of each server of backend from `show servers
// state`.
func (s *Server) serverWeights(backend string) (map[string][2]int64, error) {
	out, err := cli(s.cfg.RuntimeSocket, "show servers state "+backend)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(out, "\n")
	col := map[string]int{}
	weights := map[string][2]int64{}
	for _, line := range lines {
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			for i, c := range strings.Fields(rest) {
				col[c] = i
			}
			continue
		}
		f := strings.Fields(line)
		ni, ui, ii := col["srv_name"], col["srv_uweight"], col["srv_iweight"]
		if len(col) == 0 || len(f) <= max(ni, ui, ii) {
			continue
		}
		u, err1 := strconv.ParseInt(f[ui], 10, 64)
		in, err2 := strconv.ParseInt(f[ii], 10, 64)
		if err1 == nil && err2 == nil {
			weights[f[ni]] = [2]int64{u, in}
		}
	}
	return weights, nil
}

// cli sends one command to HAProxy's admin socket or master CLI and returns the answer.
func cli(sock, cmd string) (string, error) {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", cmd); err != nil {
		return "", err
	}
	// The master CLI answers only once our side is closed for writing.
	if uc, ok := c.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
	var b strings.Builder
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.String(), sc.Err()
}

func (s *Server) runtimeServers3(w http.ResponseWriter, r *http.Request) {
	backend := r.PathValue("parent_name")
	rss, err := s.rt6.GetServersState(backend)
	if err != nil {
		writeConfError6(w, err)
		return
	}
	s.writeRuntimeServers(w, backend, true, rss...)
}

// writeRuntimeServers answers runtime servers with their weights (3.3.1): the list, or the one.
func (s *Server) writeRuntimeServers(w http.ResponseWriter, backend string, list bool, rss ...*models6.RuntimeServer) {
	out, err := s.withWeights(backend, rss...)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if list {
		writeJSON(w, http.StatusOK, out)
		return
	}
	writeJSON(w, http.StatusOK, out[0])
}

// runtimeServer3 answers one runtime server; 404 when HAProxy has no such server.
func (s *Server) runtimeServer3(w http.ResponseWriter, r *http.Request) {
	backend, name := r.PathValue("parent_name"), r.PathValue("name")
	rs, err := s.rt6.GetServerState(backend, name)
	if err != nil || rs == nil {
		msg := fmt.Sprintf("Runtime server %s not found in backend %s", name, backend)
		if err != nil && !strings.Contains(err.Error(), "not found") {
			writeConfError6(w, err)
			return
		}
		writeError(w, http.StatusNotFound, msg)
		return
	}
	s.writeRuntimeServers(w, backend, false, rs)
}

// replaceRuntimeServer3 changes a server in the running HAProxy only: operational and admin state, and
// from 3.3.1 on weight, address and port (earlier, those are read-only and ignored). It answers the
// server as it runs afterwards.
func (s *Server) replaceRuntimeServer3(w http.ResponseWriter, r *http.Request) {
	backend, name := r.PathValue("parent_name"), r.PathValue("name")
	var data struct {
		models6.RuntimeServer
		Weight *int64 `json:"weight"`
	}
	raw := json.NewDecoder(r.Body)
	var body map[string]json.RawMessage
	if err := raw.Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "parsing body body from \"\" failed, because "+err.Error())
		return
	}
	for k, v := range body {
		var err error
		switch k {
		case "admin_state":
			err = json.Unmarshal(v, &data.AdminState)
		case "operational_state":
			err = json.Unmarshal(v, &data.OperationalState)
		case "weight":
			err = json.Unmarshal(v, &data.Weight)
		case "address":
			err = json.Unmarshal(v, &data.Address)
		case "port":
			err = json.Unmarshal(v, &data.Port)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s: %v", k, err))
			return
		}
	}
	if err := data.RuntimeServer.Validate(strfmt.Default); err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	if data.Weight != nil && (*data.Weight < 0 || *data.Weight > 256) {
		writeError(w, http.StatusUnprocessableEntity, "weight in body should be between 0 and 256")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rs, err := s.rt6.GetServerState(backend, name)
	if err != nil || rs == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Runtime server %s not found in backend %s", name, backend))
		return
	}
	if data.OperationalState != "" && data.OperationalState != rs.OperationalState {
		if err := s.rt6.SetServerHealth(backend, name, data.OperationalState); err != nil {
			writeConfError6(w, err)
			return
		}
	}
	if data.AdminState != "" && data.AdminState != rs.AdminState {
		if err := s.rt6.SetServerState(backend, name, data.AdminState); err != nil {
			writeConfError6(w, err)
			return
		}
	}
	if !s.cfg.NoRuntimeWeights {
		if data.Weight != nil {
			if err := s.rt6.SetServerWeight(backend, name, strconv.FormatInt(*data.Weight, 10)); err != nil {
				writeConfError6(w, err)
				return
			}
		}
		if (data.Address != "" && data.Address != rs.Address) || (data.Port != nil && (rs.Port == nil || *data.Port != *rs.Port)) {
			addr, port := rs.Address, int64(0)
			if data.Address != "" {
				addr = data.Address
			}
			if rs.Port != nil {
				port = *rs.Port
			}
			if data.Port != nil {
				port = *data.Port
			}
			if err := s.rt6.SetServerAddr(backend, name, addr, int(port)); err != nil {
				writeConfError6(w, err)
				return
			}
		}
	}
	if rs, err = s.rt6.GetServerState(backend, name); err != nil {
		writeConfError6(w, err)
		return
	}
	s.writeRuntimeServers(w, backend, false, rs)
}

// stats3 is GET /v3/services/haproxy/stats/native: one native_stats object, filtered as v2's.
func (s *Server) stats3(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !statsQueryOK(w, q) {
		return
	}
	all := s.rt6.GetStats()
	kept := make([]*models6.NativeStat, 0, len(all.Stats))
	for _, st := range all.Stats {
		if keepStat(q, st.Name, st.Type, st.BackendName) {
			kept = append(kept, st)
		}
	}
	all.Stats = kept
	code := http.StatusOK
	if all.Error != "" {
		code = http.StatusInternalServerError
	}
	writeJSON(w, code, all)
}
