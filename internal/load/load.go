// Package load sends steady HTTP traffic and counts what users would have seen: answers per version
// (the demo app's X-Demo-Version header), per status, and failed requests (transport errors and 5xx).
// cmd/loadgen, the end-to-end tests and fridaymorning drill use it to measure a release's blast radius.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Summary is what a run of load saw.
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

// FormatCounts renders counts as "k:v,k:v", sorted by key.
func FormatCounts(m map[string]int64) string {
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

// TestBed checks that the URL's host belongs to a test bed: a loopback address, localhost, or an address
// on the private bridge of a multi-node bed (stacks/testbed/multinode.sh names it fmNNbr; only the bed's
// own network namespaces are on it). load is a test-bed tool.
func TestBed(raw string) error { return testBed(raw, bedBridges) }

func testBed(raw string, bridges func() []*net.IPNet) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-url %q: want http://127.0.0.1:PORT/", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip != nil && ip.IsLoopback() {
		return nil
	}
	for _, n := range bridges() {
		if ip != nil && n.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("-url %q: loadgen only sends traffic to loopback addresses and to a multi-node test bed's bridge", raw)
}

// bedBridges lists the subnets of this machine's multi-node bed bridges.
func bedBridges() []*net.IPNet {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []*net.IPNet
	for _, ifc := range ifaces {
		if !bedBridge.MatchString(ifc.Name) {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				out = append(out, n)
			}
		}
	}
	return out
}

var bedBridge = regexp.MustCompile(`^fm[0-9]+br$`)

// Run sends rps requests a second to target until ctx ends, with at most workers in flight; a tick that
// finds every worker busy is skipped (counted), so a slow server does not make load pile up. It writes a
// progress line to progress every every.
func Run(ctx context.Context, target string, rps float64, workers int, timeout time.Duration, every time.Duration, progress io.Writer) Summary {
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
				s.Sent, s.OK, s.Failed, s.Skipped, FormatCounts(s.ByVersion), FormatCounts(s.ByStatus))
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
