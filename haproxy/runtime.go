package haproxy

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/haproxytech/client-native/v5/runtime"
	rtopts "github.com/haproxytech/client-native/v5/runtime/options"
)

// runtimeSocket reaches HAProxy through its admin socket with client-native's runtime client: `set
// server B/S weight W` and `show stat`, for HAProxy without the Data Plane API.
//
// Caveat: runtime weights live in the running process only. A reload starts workers with the weights
// of the configuration file (unless HAProxy saves and loads its server state with server-state-file /
// load-server-state-from-file), so a reload during a release puts the configured weights back. The
// release's next step sets them again; the Data Plane API backend does not have this gap.
type runtimeSocket struct {
	cfg  Config
	once sync.Once
	rt   runtime.Runtime
	err  error
}

func newRuntimeSocket(cfg Config) (*runtimeSocket, error) {
	if cfg.RuntimeSocket == "" {
		return nil, fmt.Errorf("haproxy: haproxy.mode runtime needs haproxy.runtime_socket, the admin socket (stats socket ... level admin)")
	}
	return &runtimeSocket{cfg: cfg}, nil
}

func (r *runtimeSocket) String() string { return "runtime socket " + r.cfg.RuntimeSocket }

// client connects on first use, so that New does no I/O.
func (r *runtimeSocket) client(ctx context.Context) (runtime.Runtime, error) {
	r.once.Do(func() {
		r.rt, r.err = runtime.New(ctx, rtopts.Socket(r.cfg.RuntimeSocket))
	})
	if r.err != nil {
		return nil, fmt.Errorf("haproxy: runtime socket %s: %w: %w: check haproxy.runtime_socket and that HAProxy runs", r.cfg.RuntimeSocket, ErrUnreachable, r.err)
	}
	return r.rt, nil
}

// check verifies that the socket answers and HAProxy has the backend.
func (r *runtimeSocket) check(ctx context.Context) error {
	rt, err := r.client(ctx)
	if err != nil {
		return err
	}
	for _, coll := range rt.GetStats() {
		if coll.Error != "" {
			return fmt.Errorf("haproxy: runtime socket %s: %w: %s: check haproxy.runtime_socket and that HAProxy runs", r.cfg.RuntimeSocket, ErrUnreachable, coll.Error)
		}
		for _, st := range coll.Stats {
			if st.Type == "backend" && st.Name == r.cfg.Backend {
				return nil
			}
		}
	}
	return fmt.Errorf("haproxy: backend %q not found at runtime socket %s (%w): check haproxy.backend in fridaymorning.yaml", r.cfg.Backend, r.cfg.RuntimeSocket, ErrNotFound)
}

func (r *runtimeSocket) servers(ctx context.Context) (map[string]ServerState, error) {
	rt, err := r.client(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]ServerState{}
	for _, coll := range rt.GetStats() {
		if coll.Error != "" {
			return nil, fmt.Errorf("haproxy: statistics of backend %q through runtime socket %s: %w: %s", r.cfg.Backend, r.cfg.RuntimeSocket, ErrUnreachable, coll.Error)
		}
		for _, st := range coll.Stats {
			if st.Stats != nil && st.Type == "server" && st.BackendName == r.cfg.Backend {
				out[st.Name] = stateOf(st.Name, st.Stats)
			}
		}
	}
	return out, nil
}

func (r *runtimeSocket) setWeight(ctx context.Context, name string, weight int) error {
	rt, err := r.client(ctx)
	if err != nil {
		return err
	}
	if err := rt.SetServerWeight(r.cfg.Backend, name, strconv.Itoa(weight)); err != nil {
		return fmt.Errorf("haproxy: setting the weight of server %q in backend %q through runtime socket %s: %w", name, r.cfg.Backend, r.cfg.RuntimeSocket, err)
	}
	return nil
}

func (r *runtimeSocket) setMaint(ctx context.Context, name string, maint bool) error {
	rt, err := r.client(ctx)
	if err != nil {
		return err
	}
	state := "ready"
	if maint {
		state = "maint"
	}
	if err := rt.SetServerState(r.cfg.Backend, name, state); err != nil {
		return fmt.Errorf("haproxy: setting server %q of backend %q to %s through runtime socket %s: %w", name, r.cfg.Backend, state, r.cfg.RuntimeSocket, err)
	}
	return nil
}
