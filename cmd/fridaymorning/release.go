package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/release"
)

// releaseOptions are the release command's flags; set ones override fridaymorning.yaml.
type releaseOptions struct {
	configPath string
	image      string
	service    string
	steps      string
	bake       time.Duration
	gate       bool
}

func newReleaseCmd(stdout, stderr io.Writer) *cobra.Command {
	var opts releaseOptions
	cmd := &cobra.Command{
		Use:   "release --image IMAGE",
		Short: "Release IMAGE to the service through a canary, step by step, then promote or abort",
		Long: `Release IMAGE to the configured Swarm service through a canary.

The canary service is created as a clone of the stable service with the new image; once its tasks run and
pass HAProxy's health checks, each step sends its share of requests to it, bakes, and judges canary against
stable from InfluxDB. Every step passed: promote (all traffic on the canary, stable updated to IMAGE, all
traffic back on stable, canary removed). A step failed: abort (all traffic back on stable at once, canary
removed, stable untouched). Ctrl-C aborts safely.

In a terminal it opens the cockpit (--headless or CI=true for line output); without one, the output is
one line per event. Exit codes:
  0  promoted
  1  error: the release could not be carried out (the message says what state was left behind)
  2  usage: bad flags
  3  aborted by analysis: the canary was judged bad (or never became healthy)
  4  aborted by an operator (interrupted)
  5  paused: at the promotion gate (--pause-before-promote), or inconclusive and paused for a human
     (analysis.on_inconclusive: pause), or aborted as inconclusive: too little data to judge
  6  promoted, then rolled back to the warm standby (promote.standby) while this process kept it

Secrets come from the environment or files, never from flags or the config file itself:
  FRIDAYMORNING_DATAPLANE_PASSWORD (or haproxy.password_file)
  FRIDAYMORNING_INFLUXDB_TOKEN     (or influxdb.token_file)`,
		Example: `  fridaymorning release --config fridaymorning.yaml --image registry.example.com/shop:v2
  fridaymorning release --image shop:v2 --steps 5,20,50 --bake 2m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("config") {
				opts.configPath = ""
			}
			return runRelease(cmd.Context(), opts, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.configPath, "config", "c", "fridaymorning.yaml", "config file")
	f.StringVar(&opts.image, "image", "", "image to release (required)")
	f.StringVar(&opts.service, "service", "", "stable Swarm service (overrides service:)")
	f.StringVar(&opts.steps, "steps", "", "canary shares in percent, e.g. 10,25,50 (overrides steps:)")
	f.DurationVar(&opts.bake, "bake", 0, "how long each step runs before it is judged (overrides bake:)")
	f.BoolVar(&opts.gate, "pause-before-promote", false, "stop once every step passed, canary at its last share, for a later `fridaymorning promote` or `abort` (exit 5)")
	_ = cmd.MarkFlagRequired("image")
	addRunFlags(cmd)
	return cmd
}

func runRelease(ctx context.Context, opts releaseOptions, stdout, stderr io.Writer) error {
	fc, err := loadConfigFlag(opts.configPath)
	if err != nil {
		return &exitErr{exitError, err}
	}
	if opts.service != "" {
		fc.Service = opts.service
	}
	if opts.steps != "" {
		if fc.Steps, err = parseSteps(opts.steps); err != nil {
			return &exitErr{exitUsage, err}
		}
	}
	if opts.bake != 0 {
		fc.Bake = duration(opts.bake)
	}
	if opts.gate {
		fc.Promote.PauseBefore = true
	}
	return drive(ctx, fc, opts.image, stdout, stderr, func(ctx context.Context, e *release.Engine) (release.Outcome, error) {
		return e.Run(ctx)
	}, exitCodeFor)
}

// loadConfigFlag loads the --config file; "" means the default fridaymorning.yaml, which may be absent.
func loadConfigFlag(path string) (*fileConfig, error) {
	if path == "" {
		return loadConfig("fridaymorning.yaml", false)
	}
	return loadConfig(path, true)
}

// drive wires an engine for fc, runs it with run under interrupt handling, prints its events, and maps
// the outcome to an exit code with code.
func drive(ctx context.Context, fc *fileConfig, image string, stdout, stderr io.Writer,
	run func(context.Context, *release.Engine) (release.Outcome, error), code func(release.Outcome) int) error {
	out, err := newLines(stdout)
	if err != nil {
		return &exitErr{exitUsage, err}
	}
	var report *junit
	if reportFlag != "" {
		report = &junit{}
	}
	sk := &sink{lines: out}
	var finished, released string
	w, err := wire(fc, image, func(ev release.Event) {
		if ev.Kind == release.KindFinished {
			finished = ev.Message
		}
		if ev.Image != "" {
			released = ev.Image
		}
		if report != nil {
			report.Event(ev)
		}
		sk.event(ev)
	})
	if err != nil {
		c := exitError
		writeOutputs(report, fc.Service, "", "", release.OutcomeFailed, c, err.Error(), stderr)
		return &exitErr{c, err}
	}
	defer w.Close()

	ctx, stop := interruptible(ctx, stderr)
	defer stop()
	var outcome release.Outcome
	if wantCockpit(stdout) {
		outcome, err = cockpit(ctx, w, sk, stdout, func(ctx context.Context) (release.Outcome, error) { return run(ctx, w.engine) })
	} else {
		outcome, err = run(ctx, w.engine)
	}
	c := code(outcome)
	msg := finished
	if err != nil {
		msg = err.Error()
	}
	writeOutputs(report, fc.Service, w.engine.ID(), released, outcome, c, msg, stderr)
	if c == 0 {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("release %s %s: %s", w.engine.ID(), outcome, finished)
	}
	return &exitErr{c, err}
}

// writeOutputs writes the --report and --dotenv files, if asked for; a failure to write them is said on
// stderr and does not change the exit code.
func writeOutputs(report *junit, service, id, image string, outcome release.Outcome, code int, message string, stderr io.Writer) {
	if report != nil {
		if report.release == "" {
			report.Event(release.Event{Time: time.Now(), Kind: release.KindFinished, ReleaseID: id, Service: service, Outcome: outcome, Message: message})
		}
		if err := report.write(reportFlag); err != nil {
			fmt.Fprintf(stderr, "fridaymorning: writing the report %s: %v\n", reportFlag, err)
		}
	}
	if dotenvFlag != "" {
		err := writeDotenv(dotenvFlag, map[string]string{
			"FRIDAYMORNING_OUTCOME":   string(outcome),
			"FRIDAYMORNING_EXIT_CODE": fmt.Sprint(code),
			"FRIDAYMORNING_RELEASE":   id,
			"FRIDAYMORNING_SERVICE":   service,
			"FRIDAYMORNING_IMAGE":     image,
			"FRIDAYMORNING_MESSAGE":   message,
		})
		if err != nil {
			fmt.Fprintf(stderr, "fridaymorning: writing the dotenv file %s: %v\n", dotenvFlag, err)
		}
	}
}

// addRunFlags adds the flags of the commands that carry a release out.
func addRunFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&outputFlag, "output", "o", "text", "headless output: text (logfmt lines) or json (one object per event)")
	f.StringVar(&reportFlag, "report", "", "write a JUnit XML report here: one test case per step's analysis (GitLab shows it as test results)")
	f.StringVar(&dotenvFlag, "dotenv", "", "write the outcome here as a dotenv file for later CI jobs")
}

// interruptible returns a context that the first SIGINT or SIGTERM cancels, which the engine takes as
// an operator's abort; a second one exits at once.
func interruptible(ctx context.Context, stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-sigs:
		case <-ctx.Done():
			return
		}
		fmt.Fprintln(stderr, "fridaymorning: interrupted: aborting the release safely (interrupt again to exit at once, leaving it as it is)")
		cancel()
		if _, ok := <-sigs; ok {
			fmt.Fprintln(stderr, "fridaymorning: second interrupt: exiting without cleaning up; `fridaymorning resume` or `abort` takes it from here")
			os.Exit(exitAbortedOperator)
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		cancel()
	}
}
