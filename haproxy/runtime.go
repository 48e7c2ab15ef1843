package haproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// runtimeSocket reaches HAProxy through its admin socket: `set server B/S weight W`, `get weight B/S` and
// `show stat B 4 -1`, for HAProxy without the Data Plane API. The socket is a unix socket path
// ("/var/run/haproxy/admin.sock", or "unix:///…") or a TCP address ("tcp://HOST:9999", for `stats socket
// ipv4@:9999 level admin`), so that fridaymorning need not run on HAProxy's node.
//
// Every call is one round trip: the commands of a call go out together, separated by semicolons, and
// HAProxy answers each in turn, each answer ended by an empty line. A shift's writes and the `get
// weight`s that read them back are one such call, so a shift costs two round trips (read, then write
// and read back). They share one connection (see session), since most of what a round trip costs is
// the connection, not the commands; every other call has a connection of its own. A fresh connection
// per operation also means a reload never leaves us talking to an old worker for long.
//
// Caveat: runtime weights live in the running process only. A reload starts workers with the weights
// of the configuration file (unless HAProxy saves and loads its server state with server-state-file /
// load-server-state-from-file), so a reload during a release puts the configured weights back. The
// release's next step sets them again; the Data Plane API backend does not have this gap.
type runtimeSocket struct {
	cfg              Config
	network, address string // for net.Dial, from cfg.RuntimeSocket
	// sess, in a session's copy, is the connection its calls share.
	sess *cliSession
}

// cliSession is one connection to the admin socket in interactive mode (`prompt`: HAProxy keeps the
// connection open and ends each answer with a prompt), shared by the calls of one operation.
type cliSession struct {
	conn     net.Conn
	rd       *bufio.Reader
	lastUsed time.Time
}

// sessionIdle is how long a session's connection may stay unused before a call opens a new one: well
// under HAProxy's idle timeout for the CLI (stats timeout, 10s by default).
const sessionIdle = time.Second

func (s *cliSession) close() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn, s.rd = nil, nil
	}
}

// session returns a runtime socket whose calls share one interactive connection, opened at the first
// call, and the func that closes it. It serves one operation (a shift: a read, then the writes and their
// read-back), never longer, so that a reload does not leave a kept connection talking to an old worker.
func (r *runtimeSocket) session() (backend, func()) {
	s := &runtimeSocket{cfg: r.cfg, network: r.network, address: r.address, sess: &cliSession{}}
	return s, s.sess.close
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

// run sends cmds in one round trip and returns each command's answer, without its closing empty line:
// on a connection of its own, or on the session's.
func (r *runtimeSocket) run(ctx context.Context, cmds ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	if r.sess != nil {
		return r.runInSession(ctx, cmds)
	}
	conn, err := r.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, strings.Join(cmds, "; ")+"\n"); err != nil {
		return nil, r.unreachable(err)
	}
	// Each answer ends with an empty line; HAProxy closes the connection after the last.
	answers := make([]string, 0, len(cmds))
	var cur strings.Builder
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 0, 4<<10), 4<<20) // grows for a large statistics table
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

// dial connects to the admin socket, with ctx's deadline (or the timeout) on the connection.
func (r *runtimeSocket) dial(ctx context.Context) (net.Conn, error) {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, r.network, r.address)
	if err != nil {
		return nil, r.unreachable(err)
	}
	r.deadline(ctx, conn)
	return conn, nil
}

func (r *runtimeSocket) deadline(ctx context.Context, conn net.Conn) {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(r.cfg.Timeout))
	}
}

// runInSession is run on the session's connection, opening it in interactive mode if it has none (or
// has one unused for longer than sessionIdle). A kept connection that fails is replaced and the commands
// sent once more: HAProxy may have closed it, and every command fridaymorning sends sets or reads a
// state, so that sending it twice does what sending it once does.
func (r *runtimeSocket) runInSession(ctx context.Context, cmds []string) ([]string, error) {
	s := r.sess
	if s.conn != nil && time.Since(s.lastUsed) > sessionIdle {
		s.close()
	}
	kept := s.conn != nil
	answers, err := r.exchange(ctx, cmds)
	if err != nil && kept {
		answers, err = r.exchange(ctx, cmds)
	}
	return answers, err
}

// exchange sends cmds on the session's connection (opening it if needed) and reads their answers,
// each ended by the prompt. On an error the connection is closed.
func (r *runtimeSocket) exchange(ctx context.Context, cmds []string) ([]string, error) {
	s := r.sess
	// One command a line: each line's answer ends with the prompt, whatever a version does with the
	// commands of one line. HAProxy reads the lines in turn, so they still go out in one write.
	line := strings.Join(cmds, "\n") + "\n"
	skip := 0
	if s.conn == nil {
		conn, err := r.dial(ctx)
		if err != nil {
			return nil, err
		}
		s.conn, s.rd = conn, bufio.NewReaderSize(conn, 4<<10)
		line, skip = "prompt\n"+line, 1 // `prompt` answers an empty line and the prompt
	} else {
		r.deadline(ctx, s.conn)
	}
	if _, err := io.WriteString(s.conn, line); err != nil {
		s.close()
		return nil, r.unreachable(err)
	}
	answers := make([]string, 0, len(cmds))
	for len(answers) < len(cmds)+skip {
		a, err := readPrompted(s.rd)
		if err != nil {
			s.close()
			return nil, r.unreachable(fmt.Errorf("HAProxy answered %d of %d commands: %w", max(len(answers)-skip, 0), len(cmds), err))
		}
		answers = append(answers, a)
	}
	s.lastUsed = time.Now()
	return answers[skip:], nil
}

// readPrompted reads one answer of HAProxy's CLI in interactive mode: its lines, an empty line and the
// prompt "> ". It returns the lines, as run does.
func readPrompted(rd *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		chunk, err := rd.ReadString('>')
		b.WriteString(chunk)
		if err != nil {
			return "", err
		}
		if b.Len() > 4<<20 {
			return "", errors.New("an answer longer than 4 MiB")
		}
		if a := b.String(); a == "\n>" || strings.HasSuffix(a, "\n\n>") {
			c, err := rd.ReadByte()
			if err != nil {
				return "", err
			}
			if c == ' ' {
				return strings.TrimSuffix(a, "\n>"), nil
			}
			b.WriteByte(c)
		}
	}
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

// setWeights writes the weights and reads back those of check in one round trip: `set server … weight`
// for each change, then `get weight` for each server of check, which answers the weight as set (slow
// start does not lower it) and costs HAProxy far less than its statistics table. HAProxy applies the
// commands in order; one it refuses stops nothing after it, so the writes that went through are
// reported by name (for the rollback) and the first refusal is the error.
func (r *runtimeSocket) setWeights(ctx context.Context, changes []weightChange, check []string) ([]string, map[string]ServerState, error) {
	cmds := make([]string, 0, len(changes)+len(check))
	for _, ch := range changes {
		if !cliSafe(ch.name) {
			return nil, nil, fmt.Errorf("haproxy: server %q of backend %q has a character the admin socket cannot take", ch.name, r.cfg.Backend)
		}
		cmds = append(cmds, fmt.Sprintf("set server %s/%s weight %d", r.cfg.Backend, ch.name, ch.weight))
	}
	for _, n := range check {
		if !cliSafe(n) {
			check = nil // not read back here: the caller reads the backend
			cmds = cmds[:len(changes)]
			break
		}
		cmds = append(cmds, "get weight "+r.cfg.Backend+"/"+n)
	}
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
	if len(check) == 0 {
		return done, nil, nil
	}
	live := make(map[string]ServerState, len(check))
	for i, n := range check {
		w, ok := parseGetWeight(answers[len(changes)+i])
		if !ok {
			return done, nil, nil // the writes went through; the caller reads back again
		}
		live[n] = ServerState{Name: n, Weight: w}
	}
	return done, live, nil
}

// parseGetWeight reads the answer to `get weight B/S`: "W (initial I)", W the weight as set.
func parseGetWeight(answer string) (int, bool) {
	f := strings.Fields(answer)
	if len(f) != 3 || f[1] != "(initial" {
		return 0, false
	}
	w, err := strconv.Atoi(f[0])
	return w, err == nil && w >= 0 && w <= MaxWeight
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
