// Command loadgen sends steady HTTP traffic through HAProxy while a release runs, and counts what
// users would have seen: answers per version (the demo app's X-Demo-Version header), per status, and
// failed requests (transport errors and 5xx). The demo, the end-to-end tests and the drills use it to
// measure a release's blast radius.
//
//	loadgen -url http://127.0.0.1:18400/ -rps 100 -duration 2m
//
// It prints a progress line every few seconds on stderr and, when it stops (duration over, or SIGINT /
// SIGTERM), one JSON summary line on stdout. It only targets loopback addresses and a multi-node test
// bed's bridge: it is a test-bed tool.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fridaymorning/fridaymorning/internal/load"
)

func main() {
	target := flag.String("url", "http://127.0.0.1:18400/", "URL to send GET requests to (loopback or a multi-node bed's bridge only)")
	rps := flag.Float64("rps", 100, "requests per second")
	duration := flag.Duration("duration", time.Minute, "how long to run (at most 1h); SIGINT/SIGTERM stop it earlier")
	workers := flag.Int("workers", 32, "requests in flight at most")
	timeout := flag.Duration("timeout", 5*time.Second, "per-request timeout; a request that takes longer counts as failed")
	every := flag.Duration("every", 5*time.Second, "progress line interval")
	flag.Parse()

	if err := load.TestBed(*target); err != nil {
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
	s := load.Run(ctx, *target, *rps, *workers, *timeout, *every, os.Stderr)
	fmt.Fprintf(os.Stderr, "loadgen: done: sent=%d ok=%d failed=%d skipped=%d versions=%s\n", s.Sent, s.OK, s.Failed, s.Skipped, load.FormatCounts(s.ByVersion))
	if err := json.NewEncoder(os.Stdout).Encode(s); err != nil {
		os.Exit(1)
	}
}
