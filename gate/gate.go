// Package gate implements the release engine's gates: an HTTP endpoint (Flagger's webhooks) or a local
// command, asked at pre_rollout (a smoke or load test against the canary before it gets traffic),
// confirm_promotion (an outside system or a human approving) and post_rollout.
//
// An HTTP gate receives the release.GateRequest as JSON (plus the canary's address) in a POST and opens on
// 200; any other answer keeps it shut, and the first line of its body is the reason the release gives. A
// command gate gets the same JSON on its standard input and as FRIDAYMORNING_* environment variables, and
// opens when it exits 0; its last line of output is the reason otherwise. URLs can hold secrets: errors
// name only their scheme and host.
package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/fridaymorning/fridaymorning/internal/webhook"
	"github.com/fridaymorning/fridaymorning/release"
)

// The gates satisfy the engine's interface.
var (
	_ release.Gate = (*HTTP)(nil)
	_ release.Gate = (*Command)(nil)
)

// payload is what a gate receives: the engine's request and the canary's address.
type payload struct {
	release.GateRequest
	// CanaryURL is where the canary answers directly, past HAProxy (for a smoke test), if configured.
	CanaryURL string `json:"canary_url,omitempty"`
}

// HTTP is a gate asked with a POST.
type HTTP struct {
	// URL is the endpoint; it may hold a secret and is never printed.
	URL string
	// CanaryURL is passed on to the endpoint as canary_url.
	CanaryURL string
	// Headers are added to the request (an Authorization header, say).
	Headers map[string]string
	// Client sends the request (default http.DefaultClient).
	Client *http.Client
}

// NewHTTP checks the URL and returns the gate.
func NewHTTP(rawURL, canaryURL string, headers map[string]string) (*HTTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("gate: the URL is no http(s) URL: set it through url_env or url_file")
	}
	return &HTTP{URL: rawURL, CanaryURL: canaryURL, Headers: headers}, nil
}

// Open posts the request and opens on 200.
func (g *HTTP) Open(ctx context.Context, r release.GateRequest) error {
	body, err := json.Marshal(payload{GateRequest: r, CanaryURL: g.CanaryURL})
	if err != nil {
		return err
	}
	status, msg, err := webhook.Post(ctx, g.Client, g.URL, g.Headers, body)
	switch {
	case err != nil:
		return err
	case status == http.StatusOK:
		return nil
	case msg != "":
		return fmt.Errorf("HTTP %d: %s", status, msg)
	}
	return fmt.Errorf("HTTP %d from %s", status, webhook.Host(g.URL))
}

// Command is a gate that runs a local program.
type Command struct {
	// Argv is the program and its arguments (no shell: give ["sh", "-c", "…"] for one).
	Argv []string
	// CanaryURL is passed on as FRIDAYMORNING_CANARY_URL and canary_url.
	CanaryURL string
}

// NewCommand checks argv and returns the gate.
func NewCommand(argv []string, canaryURL string) (*Command, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("gate: command is empty: give the program and its arguments, e.g. [./smoke.sh]")
	}
	return &Command{Argv: argv, CanaryURL: canaryURL}, nil
}

// Open runs the command; it opens when the command exits 0.
func (g *Command) Open(ctx context.Context, r release.GateRequest) error {
	body, err := json.Marshal(payload{GateRequest: r, CanaryURL: g.CanaryURL})
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, g.Argv[0], g.Argv[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(os.Environ(),
		"FRIDAYMORNING_GATE="+string(r.Point),
		"FRIDAYMORNING_RELEASE="+r.ReleaseID,
		"FRIDAYMORNING_SERVICE="+r.Service,
		"FRIDAYMORNING_CANARY="+r.Canary,
		"FRIDAYMORNING_IMAGE="+r.Image,
		"FRIDAYMORNING_STABLE_IMAGE="+r.StableImage,
		"FRIDAYMORNING_CANARY_URL="+g.CanaryURL,
		"FRIDAYMORNING_CANARY_PERCENT="+strconv.FormatFloat(r.CanaryPercent, 'f', -1, 64),
		"FRIDAYMORNING_OUTCOME="+string(r.Outcome))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err == nil {
		return nil
	}
	if last := lastLine(out.String()); last != "" {
		return fmt.Errorf("%s: %v: %s", g.Argv[0], err, last)
	}
	return fmt.Errorf("%s: %v", g.Argv[0], err)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return webhook.Truncate(strings.TrimSpace(lines[len(lines)-1]))
}
