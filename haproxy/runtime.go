package haproxy

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/haproxytech/client-native/v5/models"
)

// runtimeSocket reaches HAProxy through its runtime API (the admin socket): `set server B/S weight W`,
// `set server B/S state`, and `show stat`, for HAProxy without the Data Plane API. The socket is a unix
// socket path ("/var/run/haproxy/admin.sock", or "unix:///…") or a TCP address ("tcp://host:9999", for
// `stats socket ipv4@:9999 level admin`), so that fridaymorning need not run on HAProxy's node.
//
// Each command is one connection in HAProxy's non-interactive mode: one line out, the answer until
// HAProxy closes the connection.
//
// Caveat: runtime weights live in the running process only. A reload starts workers with the weights
// of the configuration file (unless HAProxy saves and loads its server state with server-state-file /
// load-server-state-from-file), so a reload during a release puts the configured weights back. The
// release's next step sets them again; the Data Plane API backend does not have this gap.
type runtimeSocket struct {
	cfg              Config
	network, address string
}

// maxRuntimeAnswer bounds what one command may return (show stat of a large configuration).
const maxRuntimeAnswer = 32 << 20

func newRuntimeSocket(cfg Config) (*runtimeSocket, error) {
	network, address, err := runtimeAddress(cfg.RuntimeSocket)
	if err != nil {
		return nil, err
	}
	return &runtimeSocket{cfg: cfg, network: network, address: address}, nil
}

// runtimeAddress splits haproxy.runtime_socket into a network and an address for net.Dial.
func runtimeAddress(s string) (network, address string, err error) {
	switch {
	case s == "":
		return "", "", errors.New("haproxy: haproxy.mode runtime needs haproxy.runtime_socket, the admin socket (stats socket ... level admin): a path, or tcp://HOST:PORT")
	case strings.HasPrefix(s, "tcp://"):
		hostport := strings.TrimPrefix(s, "tcp://")
		if _, port, err := net.SplitHostPort(hostport); err != nil || port == "" {
			return "", "", fmt.Errorf("haproxy: haproxy.runtime_socket %q: want tcp://HOST:PORT, e.g. tcp://10.0.0.5:9999 for stats socket ipv4@:9999", s)
		}
		return "tcp", hostport, nil
	case strings.HasPrefix(s, "unix://"):
		return "unix", strings.TrimPrefix(s, "unix://"), nil
	case strings.Contains(s, "://"):
		return "", "", fmt.Errorf("haproxy: haproxy.runtime_socket %q: want a socket path, unix:///PATH or tcp://HOST:PORT", s)
	}
	return "unix", s, nil
}

func (r *runtimeSocket) String() string { return "runtime socket " + r.cfg.RuntimeSocket }

// command sends one command and returns HAProxy's answer.
func (r *runtimeSocket) command(ctx context.Context, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, r.network, r.address)
	if err != nil {
		return "", fmt.Errorf("haproxy: runtime socket %s: %w: %w: check haproxy.runtime_socket and that HAProxy runs", r.cfg.RuntimeSocket, ErrUnreachable, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return "", fmt.Errorf("haproxy: runtime socket %s: %w", r.cfg.RuntimeSocket, err)
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("haproxy: runtime socket %s: sending %q: %w: %w", r.cfg.RuntimeSocket, cmd, ErrUnreachable, err)
	}
	out, err := io.ReadAll(io.LimitReader(conn, maxRuntimeAnswer))
	if err != nil {
		return "", fmt.Errorf("haproxy: runtime socket %s: reading the answer to %q: %w: %w", r.cfg.RuntimeSocket, cmd, ErrUnreachable, err)
	}
	return string(out), nil
}

// stat is one row of `show stat`.
type stat struct {
	proxy, name string
	typ         string // 0 frontend, 1 backend, 2 server, 3 listener
	state       ServerState
}

// showStat runs `show stat` and parses its CSV.
func (r *runtimeSocket) showStat(ctx context.Context) ([]stat, error) {
	out, err := r.command(ctx, "show stat")
	if err != nil {
		return nil, err
	}
	rows, err := parseStat(out)
	if err != nil {
		return nil, fmt.Errorf("haproxy: show stat through runtime socket %s: %w", r.cfg.RuntimeSocket, err)
	}
	return rows, nil
}

// parseStat reads `show stat` output: a "# pxname,svname,…" header, then one CSV row per proxy,
// server and listener.
func parseStat(out string) ([]stat, error) {
	header, body, ok := strings.Cut(out, "\n")
	if !ok || !strings.HasPrefix(header, "# ") {
		return nil, fmt.Errorf("%w: the answer is no statistics (%q): the socket needs level admin or operator", ErrUnreachable, firstLine(out))
	}
	col := map[string]int{}
	for i, k := range strings.Split(strings.TrimPrefix(header, "# "), ",") {
		col[k] = i
	}
	for _, k := range []string{"pxname", "svname", "type", "weight", "status", "check_status", "scur"} {
		if _, ok := col[k]; !ok {
			return nil, fmt.Errorf("show stat has no %s column", k)
		}
	}
	rd := csv.NewReader(strings.NewReader(body))
	rd.FieldsPerRecord = -1
	recs, err := rd.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("parsing show stat: %w", err)
	}
	var rows []stat
	for _, rec := range recs {
		field := func(k string) string {
			if i, ok := col[k]; ok && i < len(rec) {
				return rec[i]
			}
			return ""
		}
		num := func(k string) *int64 {
			v, err := strconv.ParseInt(field(k), 10, 64)
			if err != nil {
				return nil
			}
			return &v
		}
		st := &models.NativeStatStats{
			Weight: num("weight"), Status: field("status"), CheckStatus: field("check_status"), Scur: num("scur"),
			Hrsp1xx: num("hrsp_1xx"), Hrsp2xx: num("hrsp_2xx"), Hrsp3xx: num("hrsp_3xx"), Hrsp4xx: num("hrsp_4xx"),
			Hrsp5xx: num("hrsp_5xx"), HrspOther: num("hrsp_other"),
		}
		rows = append(rows, stat{proxy: field("pxname"), name: field("svname"), typ: field("type"), state: stateOf(field("svname"), st)})
	}
	return rows, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// check verifies that the socket answers and HAProxy has the backend.
func (r *runtimeSocket) check(ctx context.Context) error {
	rows, err := r.showStat(ctx)
	if err != nil {
		return err
	}
	for _, st := range rows {
		if st.typ == "1" && st.proxy == r.cfg.Backend {
			return nil
		}
	}
	return fmt.Errorf("haproxy: backend %q not found at runtime socket %s (%w): check haproxy.backend in fridaymorning.yaml", r.cfg.Backend, r.cfg.RuntimeSocket, ErrNotFound)
}

func (r *runtimeSocket) servers(ctx context.Context) (map[string]ServerState, error) {
	rows, err := r.showStat(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]ServerState{}
	for _, st := range rows {
		if st.typ == "2" && st.proxy == r.cfg.Backend {
			out[st.name] = st.state
		}
	}
	return out, nil
}

// set runs a `set server` command, which answers nothing when it succeeds.
func (r *runtimeSocket) set(ctx context.Context, cmd, what string) error {
	out, err := r.command(ctx, cmd)
	if err != nil {
		return fmt.Errorf("haproxy: %s: %w", what, err)
	}
	if msg := strings.TrimSpace(out); msg != "" {
		hint := ""
		if strings.Contains(msg, "Permission denied") {
			hint = ": the socket needs level admin (stats socket ... level admin)"
		}
		return fmt.Errorf("haproxy: %s through runtime socket %s: HAProxy says %q%s", what, r.cfg.RuntimeSocket, firstLine(msg), hint)
	}
	return nil
}

func (r *runtimeSocket) setWeight(ctx context.Context, name string, weight int) error {
	return r.set(ctx, fmt.Sprintf("set server %s/%s weight %d", r.cfg.Backend, name, weight),
		fmt.Sprintf("setting the weight of server %q in backend %q", name, r.cfg.Backend))
}

func (r *runtimeSocket) setMaint(ctx context.Context, name string, maint bool) error {
	state := "ready"
	if maint {
		state = "maint"
	}
	return r.set(ctx, fmt.Sprintf("set server %s/%s state %s", r.cfg.Backend, name, state),
		fmt.Sprintf("setting server %q of backend %q to %s", name, r.cfg.Backend, state))
}
