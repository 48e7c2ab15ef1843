package haproxy

import (
	"fmt"
	"strconv"
	"strings"
)

// statCounters are the fields of one server's statistics that fridaymorning reads. The Data Plane API v2
// and v3 both name them as HAProxy's `show stat` columns do (native_stat_stats in either specification),
// so one struct decodes both, and parseShowStat fills it from the admin socket's CSV.
type statCounters struct {
	Weight      *int64 `json:"weight"`
	Status      string `json:"status"`
	CheckStatus string `json:"check_status"`
	Scur        *int64 `json:"scur"`
	Hrsp1xx     *int64 `json:"hrsp_1xx"`
	Hrsp2xx     *int64 `json:"hrsp_2xx"`
	Hrsp3xx     *int64 `json:"hrsp_3xx"`
	Hrsp4xx     *int64 `json:"hrsp_4xx"`
	Hrsp5xx     *int64 `json:"hrsp_5xx"`
	HrspOther   *int64 `json:"hrsp_other"`
	// Econ and Eresp count the server's failed connections and responses; Wretr and Wredis the
	// attempts on it that HAProxy retried, on it or on another server. Retried attempts never show in
	// hrsp_*, which count the answer of the server that finally answered.
	Econ   *int64 `json:"econ"`
	Eresp  *int64 `json:"eresp"`
	Wretr  *int64 `json:"wretr"`
	Wredis *int64 `json:"wredis"`
	// Throttle is the share, in percent, of its weight a server in slow start runs at (nil outside it).
	Throttle *int64 `json:"throttle"`
	// Uweight is the weight as set, where weight is the effective one (lower in slow start); the admin
	// socket's show stat has it (HAProxy 2.4 and later), the Data Plane API's statistics do not.
	Uweight *int64 `json:"uweight"`
	// Addr is the server's address as HAProxy runs it ("10.0.1.7:8080"); empty for a template slot
	// that has none.
	Addr string `json:"addr"`
}

// nativeStat is one object of the Data Plane API's native statistics (native_stat).
type nativeStat struct {
	Name        string        `json:"name"`
	Type        string        `json:"type"`
	BackendName string        `json:"backend_name"`
	Stats       *statCounters `json:"stats"`
}

// nativeStats is the statistics of one HAProxy runtime API (native_stats): v2 answers an array of
// them, v3 one.
type nativeStats struct {
	Error      string       `json:"error"`
	RuntimeAPI string       `json:"runtimeAPI"`
	Stats      []nativeStat `json:"stats"`
}

func stateOf(name string, st *statCounters) ServerState {
	v := func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	}
	weight := st.Weight
	if st.Uweight != nil {
		weight = st.Uweight
	}
	return ServerState{
		Name: name, Weight: int(v(weight)), Status: st.Status, CheckStatus: st.CheckStatus, Addr: st.Addr,
		Sessions:  v(st.Scur),
		Responses: v(st.Hrsp1xx) + v(st.Hrsp2xx) + v(st.Hrsp3xx) + v(st.Hrsp4xx) + v(st.Hrsp5xx) + v(st.HrspOther),
		Errors5xx: v(st.Hrsp5xx),
		Failed:    v(st.Econ) + v(st.Eresp) + v(st.Wretr) + v(st.Wredis),
		Throttle:  int(v(st.Throttle)),
	}
}

// serverStates picks the servers of backend out of collections of native statistics.
func serverStates(backend string, colls []nativeStats) (map[string]ServerState, error) {
	out := map[string]ServerState{}
	for _, coll := range colls {
		if coll.Error != "" {
			return nil, fmt.Errorf("haproxy: statistics of backend %q: %s", backend, coll.Error)
		}
		for _, st := range coll.Stats {
			if st.Stats != nil && st.BackendName == backend && st.Type == "server" {
				out[st.Name] = stateOf(st.Name, st.Stats)
			}
		}
	}
	return out, nil
}

// parseShowStat reads the CSV of `show stat <backend> 4 -1` (servers only) into server states. Columns
// are found by the header's names, so HAProxy versions that add columns are read alike.
func parseShowStat(backend, out string) (map[string]ServerState, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "# ") {
		return nil, fmt.Errorf("haproxy: statistics of backend %q: HAProxy answered %q, not show stat's CSV", backend, truncate(out))
	}
	col := map[string]int{}
	for i, name := range strings.Split(strings.TrimPrefix(lines[0], "# "), ",") {
		col[name] = i
	}
	for _, need := range []string{"pxname", "svname", "status", "weight", "check_status", "scur", "hrsp_5xx"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("haproxy: statistics of backend %q lack the %s column", backend, need)
		}
	}
	out2 := map[string]ServerState{}
	for _, line := range lines[1:] {
		f := strings.Split(line, ",")
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(f) {
				return f[i]
			}
			return ""
		}
		num := func(name string) *int64 {
			n, err := strconv.ParseInt(get(name), 10, 64)
			if err != nil {
				return nil
			}
			return &n
		}
		if get("pxname") != backend || get("svname") == "BACKEND" || get("svname") == "FRONTEND" {
			continue
		}
		name := get("svname")
		out2[name] = stateOf(name, &statCounters{
			Weight: num("weight"), Status: get("status"), CheckStatus: get("check_status"), Scur: num("scur"),
			Hrsp1xx: num("hrsp_1xx"), Hrsp2xx: num("hrsp_2xx"), Hrsp3xx: num("hrsp_3xx"), Hrsp4xx: num("hrsp_4xx"),
			Hrsp5xx: num("hrsp_5xx"), HrspOther: num("hrsp_other"), Addr: get("addr"),
			Econ: num("econ"), Eresp: num("eresp"), Wretr: num("wretr"), Wredis: num("wredis"), Throttle: num("throttle"),
			Uweight: num("uweight"),
		})
	}
	return out2, nil
}
