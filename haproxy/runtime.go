package haproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// runtimeSocket reaches HAProxy through its admin socket: `set server B/S weight W` and `show stat B 4
// -1`, for HAProxy without the Data Plane API. The socket is a unix socket path
// ("/var/run/haproxy/admin.sock", or "unix:///…") or a TCP address ("tcp://HOST:9999", for `stats socket
// ipv4@:9999 level admin`), so that fridaymorning need not run on HAProxy's node.
//
// Every call is one connection and one round trip: the commands of a call go out together, separated
// by semicolons, and HAProxy answers each in turn, each answer ended by an empty line. A shift's writes
// and the statistics that read them back are one such call, so a shift costs two round trips (read,
// then write and read back). A fresh connection per call also means a reload never leaves us talking
// to an old worker.
//
// Caveat: runtime weights live in the running process only. A reload starts workers with the weights
// of the configuration file (unless HAProxy saves and loads its server state with server-state-file /
// load-server-state-from-file), so a reload during a release puts the configured weights back. The
// release's next step sets them again; the Data Plane API backend does not have this gap.
type runtimeSocket struct {
	cfg              Config
	network, address string // for net.Dial, from cfg.RuntimeSocket
}

func newRuntimeSocket(cfg Config) (*runtimeSocket, error) {
	network, address, err := runtimeAddress(cfg.RuntimeSocket)
	if err != nil {
		return nil, err
	}
	if !cliSafe(cfg.Backend) {
		return nil, fmt.Errorf("haproxy: backend %q has a character the admin socket cannot take in a command (space, ';', '/', quote or control): fix haproxy.backend", cfg.Backend)
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

// cliSafe reports whether name can stand in an admin-socket command as it is.
func cliSafe(name string) bool {
	return name != "" && !strings.ContainsAny(name, " \t\r\n;/\\'\"#")
}

func (r *runtimeSocket) String() string { return "runtime socket " + r.cfg.RuntimeSocket }

func (r *runtimeSocket) unreachable(err error) error {
	return fmt.Errorf("haproxy: runtime socket %s: %w: %w: check haproxy.runtime_socket and that HAProxy runs", r.cfg.RuntimeSocket, ErrUnreachable, err)
}

// run sends cmds in one connection and returns each command's answer, without its closing empty line.
func (r *runtimeSocket) run(ctx context.Context, cmds ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, r.network, r.address)
	if err != nil {
		return nil, r.unreachable(err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(r.cfg.Timeout))
	}
	if _, err := io.WriteString(conn, strings.Join(cmds, "; ")+"\n"); err != nil {
		return nil, r.unreachable(err)
	}
	// Each answer ends with an empty line; HAProxy closes the connection after the last.
	answers := make([]string, 0, len(cmds))
	var cur strings.Builder
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for len(answers) < len(cmds) && sc.Scan() {
		line := sc.Text()
		if line == "" {
			answers = append(answers, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, r.unreachable(err)
	}
	if len(answers) < len(cmds) {
		return nil, r.unreachable(fmt.Errorf("HAProxy answered %d of %d commands (%q)", len(answers), len(cmds), truncate(cur.String())))
	}
	return answers, nil
}

func (r *runtimeSocket) statCmd() string { return "show stat " + r.cfg.Backend + " 4 -1" }

// states reads the answer to statCmd.
func (r *runtimeSocket) states(answer string) (map[string]ServerState, error) {
	if strings.HasPrefix(answer, "No such proxy") {
		return nil, fmt.Errorf("haproxy: backend %q not found at runtime socket %s (%w): check haproxy.backend in fridaymorning.yaml", r.cfg.Backend, r.cfg.RuntimeSocket, ErrNotFound)
	}
	return parseShowStat(r.cfg.Backend, answer)
}

// check verifies that the socket answers and HAProxy has the backend.
func (r *runtimeSocket) check(ctx context.Context) error {
	_, err := r.servers(ctx)
	return err
}

func (r *runtimeSocket) servers(ctx context.Context) (map[string]ServerState, error) {
	a, err := r.run(ctx, r.statCmd())
	if err != nil {
		return nil, err
	}
	return r.states(a[0])
}

// setWeights writes every weight and reads the backend back in one round trip. HAProxy applies the
// commands in order; one it refuses stops nothing after it, so the writes that went through are
// reported by name (for the rollback) and the first refusal is the error.
func (r *runtimeSocket) setWeights(ctx context.Context, changes []weightChange) ([]string, map[string]ServerState, error) {
	cmds := make([]string, 0, len(changes)+1)
	for _, ch := range changes {
		if !cliSafe(ch.name) {
			return nil, nil, fmt.Errorf("haproxy: server %q of backend %q has a character the admin socket cannot take", ch.name, r.cfg.Backend)
		}
		cmds = append(cmds, fmt.Sprintf("set server %s/%s weight %d", r.cfg.Backend, ch.name, ch.weight))
	}
	cmds = append(cmds, r.statCmd())
	answers, err := r.run(ctx, cmds...)
	if err != nil {
		// Unknown which writes went through: all may have.
		done := make([]string, len(changes))
		for i, ch := range changes {
			done[i] = ch.name
		}
		return done, nil, err
	}
	var done []string
	var first error
	for i, ch := range changes {
		if a := strings.TrimSpace(answers[i]); a != "" {
			if first == nil {
				first = fmt.Errorf("haproxy: setting the weight of server %q in backend %q to %d through runtime socket %s: HAProxy answered %q", ch.name, r.cfg.Backend, ch.weight, r.cfg.RuntimeSocket, a)
			}
			continue
		}
		done = append(done, ch.name)
	}
	if first != nil {
		return done, nil, first
	}
	live, err := r.states(answers[len(changes)])
	if err != nil {
		return done, nil, nil // the writes went through; the caller reads back again
	}
	return done, live, nil
}

func (r *runtimeSocket) setMaint(ctx context.Context, name string, maint bool) error {
	if !cliSafe(name) {
		return fmt.Errorf("haproxy: server %q of backend %q has a character the admin socket cannot take", name, r.cfg.Backend)
	}
	state := "ready"
	if maint {
		state = "maint"
	}
	a, err := r.run(ctx, fmt.Sprintf("set server %s/%s state %s", r.cfg.Backend, name, state))
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(a[0]); s != "" {
		return fmt.Errorf("haproxy: setting server %q of backend %q to %s through runtime socket %s: HAProxy answered %q", name, r.cfg.Backend, state, r.cfg.RuntimeSocket, s)
	}
	return nil
}
