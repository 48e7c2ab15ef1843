// Command loadgen sends steady HTTP traffic through HAProxy while a release runs, and counts what
// users would have seen: answers per version (the demo app's X-Demo-Version header), per status, and
// failed requests (transport errors and 5xx). The demo, the end-to-end tests and the drills use it to
// measure a release's blast radius.
//
//	loadgen -url http://127.0.0.1:18400/ -rps 100 -duration 2m
//
// It prints a progress line every few seconds on stderr and, when it stops (duration over, or SIGINT /
// SIGTERM), one JSON summary line on stdout. It only targets loopback addresses: it is a test-bed tool.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Summary is what loadgen prints when it stops.
type Summary struct {
	Sent      int64            `json:"sent"`
	OK        int64            `json:"ok"`
	Failed    int64            `json:"failed"`
	Skipped   int64            `json:"skipped"`
	ByVersion map[string]int64 `json:"by_version"`
	ByStatus  map[string]int64 `json:"by_status"`
	Errors    map[string]int64 `json:"errors,omitempty"`
	Seconds   float64          `json:"seconds"`
}

type counter struct {
	mu sync.Mutex
	s  Summary
}

func (c *counter) add(version string, status int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.Sent++
	switch {
	case err != nil:
		c.s.Failed++
		msg := err.Error()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			msg = "timeout"
		} else if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		c.s.Errors[msg]++
	case status >= 500:
		c.s.Failed++
	default:
		c.s.OK++
	}
	if err == nil {
		c.s.ByStatus[strconv.Itoa(status)]++
		if version == "" {
			version = "unknown"
		}
		c.s.ByVersion[version]++
	}
}

func (c *counter) skip() {
	c.mu.Lock()
	c.s.Skipped++
	c.mu.Unlock()
}

func (c *counter) snapshot() Summary {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.ByVersion = clone(c.s.ByVersion)
	s.ByStatus = clone(c.s.ByStatus)
	s.Errors = clone(c.s.Errors)
	return s
}

func clone(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func formatCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	return strings.Join(parts, ",")
}

// loopback reports whether the URL's host is a loopback address or localhost.
func loopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-url %q: want http://127.0.0.1:PORT/", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-url %q: loadgen only sends traffic to loopback addresses", raw)
}

// run sends rps requests a second to target until ctx ends, with at most workers in flight; a tick that
// finds every worker busy is skipped (counted), so a slow server does not make load pile up.
func run(ctx context.Context, target string, rps float64, workers int, timeout time.Duration, every time.Duration, progress io.Writer) Summary {
	c := &counter{s: Summary{ByVersion: map[string]int64{}, ByStatus: map[string]int64{}, Errors: map[string]int64{}}}
	client := &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers},
	}
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	start := time.Now()
	tick := time.NewTicker(time.Duration(float64(time.Second) / rps))
	defer tick.Stop()
	report := time.NewTicker(every)
	defer report.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-report.C:
			s := c.snapshot()
			fmt.Fprintf(progress, "loadgen: sent=%d ok=%d failed=%d skipped=%d versions=%s statuses=%s\n",
				s.Sent, s.OK, s.Failed, s.Skipped, formatCounts(s.ByVersion), formatCounts(s.ByStatus))
		case <-tick.C:
			select {
			case sem <- struct{}{}:
			default:
				c.skip()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				resp, err := client.Get(target)
				if err != nil {
					c.add("", 0, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				c.add(resp.Header.Get("X-Demo-Version"), resp.StatusCode, nil)
			}()
		}
	}
	wg.Wait()
	s := c.snapshot()
	s.Seconds = time.Since(start).Seconds()
	return s
}

func main() {
	target := flag.String("url", "http://127.0.0.1:18400/", "URL to send GET requests to (loopback only)")
	rps := flag.Float64("rps", 100, "requests per second")
	duration := flag.Duration("duration", time.Minute, "how long to run (at most 1h); SIGINT/SIGTERM stop it earlier")
	workers := flag.Int("workers", 32, "requests in flight at most")
	timeout := flag.Duration("timeout", 5*time.Second, "per-request timeout; a request that takes longer counts as failed")
	every := flag.Duration("every", 5*time.Second, "progress line interval")
	flag.Parse()

	if err := loopback(*target); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	if *rps <= 0 || *rps > 5000 || *duration <= 0 || *duration > time.Hour || *workers <= 0 {
		fmt.Fprintln(os.Stderr, "loadgen: want 0 < -rps <= 5000, 0 < -duration <= 1h, -workers > 0")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	s := run(ctx, *target, *rps, *workers, *timeout, *every, os.Stderr)
	fmt.Fprintf(os.Stderr, "loadgen: done: sent=%d ok=%d failed=%d skipped=%d versions=%s\n", s.Sent, s.OK, s.Failed, s.Skipped, formatCounts(s.ByVersion))
	if err := json.NewEncoder(os.Stdout).Encode(s); err != nil {
		os.Exit(1)
	}
}
