// Command demoapp is the release under test in fridaymorning's demo and end-to-end tests: a tiny HTTP service
// whose behaviour comes from its environment, so a "bad release" is just a different image or env.
//
// Environment:
//
//	DEMO_VERSION      version string put in every response (default "dev")
//	DEMO_LISTEN       listen address (default ":8080")
//	DEMO_ERROR_RATE   share of requests answered 500, 0..1 (default 0)
//	DEMO_RESET_RATE   share of requests whose connection is closed without any answer, 0..1 (default 0):
//	                  what a crashing or overloaded server does, and what HAProxy's retries hide from users
//	DEMO_LATENCY      extra latency added to every request, a Go duration (default 0)
//	DEMO_JITTER       uniform random extra latency up to this duration (default 0)
//	DEMO_CRASH        "start" makes the process exit 1 at start, for crash-loop drills
//	DEMO_UNHEALTHY    "true" makes /healthz answer 503, for failing-healthcheck drills
//	DEMO_SETTING      any value, reported in every response's X-Demo-Setting header: an env-only release
//	                  shows which tasks run the new env
//	DEMO_CONFIG_FILE  a file (such as a Swarm config) whose first line is reported in every response's
//	                  X-Demo-Config header: a config release shows which tasks run the new config
//
// "demoapp healthcheck" probes /healthz on the listen port and exits 0 or 1; it is the image's
// HEALTHCHECK, since a FROM scratch image has no shell or curl.
package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	version   string
	listen    string
	errorRate float64
	resetRate float64
	latency   time.Duration
	jitter    time.Duration
	crash     string
	unhealthy bool
	setting   string
	// configFile is DEMO_CONFIG_FILE; configLine its first line, read at start.
	configFile, configLine string
}

func loadConfig(getenv func(string) string) (config, error) {
	c := config{version: "dev", listen: ":8080"}
	if v := getenv("DEMO_VERSION"); v != "" {
		c.version = v
	}
	if v := getenv("DEMO_LISTEN"); v != "" {
		c.listen = v
	}
	for _, r := range []struct {
		name string
		dst  *float64
	}{{"DEMO_ERROR_RATE", &c.errorRate}, {"DEMO_RESET_RATE", &c.resetRate}} {
		if v := getenv(r.name); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				return c, fmt.Errorf("%s=%q: want a share between 0 and 1", r.name, v)
			}
			*r.dst = f
		}
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"DEMO_LATENCY", &c.latency}, {"DEMO_JITTER", &c.jitter}} {
		if v := getenv(d.name); v != "" {
			dur, err := time.ParseDuration(v)
			if err != nil || dur < 0 {
				return c, fmt.Errorf("%s=%q: want a duration such as 50ms", d.name, v)
			}
			*d.dst = dur
		}
	}
	c.crash = getenv("DEMO_CRASH")
	c.unhealthy = getenv("DEMO_UNHEALTHY") == "true"
	c.setting = getenv("DEMO_SETTING")
	c.configFile = getenv("DEMO_CONFIG_FILE")
	return c, nil
}

// readConfigLine reads the first line of c.configFile, if one is set.
func (c *config) readConfigLine(readFile func(string) ([]byte, error)) error {
	if c.configFile == "" {
		return nil
	}
	raw, err := readFile(c.configFile)
	if err != nil {
		return fmt.Errorf("DEMO_CONFIG_FILE: %w", err)
	}
	c.configLine, _, _ = strings.Cut(string(raw), "\n")
	c.configLine = strings.TrimSpace(c.configLine)
	return nil
}

// handler serves the demo endpoints. rnd returns a float in [0,1); it is a parameter so tests are deterministic.
func handler(c config, rnd func() float64) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if c.unhealthy {
			http.Error(w, "unhealthy (DEMO_UNHEALTHY=true)", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ok %s\n", c.version)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		delay := c.latency
		if c.jitter > 0 {
			delay += time.Duration(rnd() * float64(c.jitter))
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if c.resetRate > 0 && rnd() < c.resetRate {
			// Close the connection without a byte of answer: HAProxy sees an empty response.
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					if tc, ok := conn.(*net.TCPConn); ok {
						_ = tc.SetLinger(0) // a reset, not a clean close
					}
					conn.Close()
					return
				}
			}
		}
		w.Header().Set("X-Demo-Version", c.version)
		if c.setting != "" {
			w.Header().Set("X-Demo-Setting", c.setting)
		}
		if c.configLine != "" {
			w.Header().Set("X-Demo-Config", c.configLine)
		}
		if c.errorRate > 0 && rnd() < c.errorRate {
			http.Error(w, "injected error from "+c.version, http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "hello from %s\n", c.version)
	})
	return mux
}

// healthcheck probes /healthz on the port of listen and reports whether it answered 200.
func healthcheck(listen string) error {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return err
	}
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://127.0.0.1:" + port + "/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %s", resp.Status)
	}
	return nil
}

func main() {
	c, err := loadConfig(os.Getenv)
	if err == nil {
		err = c.readConfigLine(os.ReadFile)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demoapp:", err)
		os.Exit(2)
	}
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		if err := healthcheck(c.listen); err != nil {
			fmt.Fprintln(os.Stderr, "demoapp healthcheck:", err)
			os.Exit(1)
		}
		return
	}
	if c.crash == "start" {
		fmt.Fprintln(os.Stderr, "demoapp: crashing at start (DEMO_CRASH=start)")
		os.Exit(1)
	}

	srv := &http.Server{
		Addr:              c.listen,
		Handler:           handler(c, rand.Float64),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	fmt.Printf("demoapp %s listening on %s (error rate %.2f, latency %s, jitter %s)\n",
		c.version, c.listen, c.errorRate, c.latency, c.jitter)

	select {
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "demoapp:", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	// Finish in-flight requests so a task stopped by Swarm never cuts a response short.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "demoapp: shutdown:", err)
		os.Exit(1)
	}
}
