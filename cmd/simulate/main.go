// Command simulate compares ways of judging a canary on simulated releases, fast and seeded: today's
// fixed-sample tests at every look (each early look at α/looks, the final look at α), the sequential,
// anytime-valid tests (one false-abort budget for the whole release), and a Flagger-style fixed check.
// It drives the real judges (analysis.Judge, analysis.JudgeLook) through the engine's real schedule of
// looks (release.Schedule) on simulated request streams: no test bed, a few seconds per experiment.
//
// It prints the figures as Markdown tables (the README shows them) and, with -svg, draws the detection
// times as an SVG plot:
//
//	go run ./cmd/simulate -svg docs/simulation.svg
//
// Every run has its own seed, derived from -seed, the experiment and the run's number, so the figures
// are the same on every machine and with any number of workers.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Releases, "releases", cfg.Releases, "healthy releases for the false-abort figures")
	fs.IntVar(&cfg.Runs, "runs", cfg.Runs, "releases per scenario for the detection and early-pass figures")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of every run")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "runs simulated at once")
	fs.DurationVar(&cfg.Bake, "bake", cfg.Bake, "bake of each step")
	svg := fs.String("svg", "", "also write the detection plot to this SVG file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.Releases <= 0 || cfg.Runs <= 0 || cfg.Workers <= 0 || cfg.Bake <= 0 {
		fmt.Fprintln(stderr, "simulate: -releases, -runs, -workers and -bake must be positive")
		return 2
	}
	// The runs allocate much and keep little: a lazier collector is a third faster.
	debug.SetGCPercent(400)
	start := time.Now()
	rep := Simulate(cfg)
	rep.Markdown(stdout)
	if *svg != "" {
		if err := os.WriteFile(*svg, []byte(rep.SVG()), 0o644); err != nil {
			fmt.Fprintf(stderr, "simulate: writing the plot: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "simulate: %d releases simulated in %s with %d workers\n", rep.Simulated, time.Since(start).Round(100*time.Millisecond), cfg.Workers)
	return 0
}

// Config is what the experiments simulate.
type Config struct {
	// Releases is how many healthy releases the false-abort figures take; Runs how many releases each
	// detection and early-pass scenario takes.
	Releases, Runs int
	Seed           uint64
	Workers        int
	// Rate is the requests a second; Steps the canary's shares; Bake each step's bake.
	Rate  float64
	Steps []float64
	Bake  time.Duration
}

// DefaultConfig is the setup: 10,000 healthy releases of 3 steps, looks every 2 s at 100
// requests a second, up to 2 extensions; 1,000 runs per scenario.
func DefaultConfig() Config {
	return Config{Releases: 10_000, Runs: 1_000, Seed: 1, Workers: runtime.GOMAXPROCS(0), Rate: 100, Steps: []float64{10, 25, 50}, Bake: time.Minute}
}
