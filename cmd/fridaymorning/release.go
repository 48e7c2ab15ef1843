package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/release"
)

// releaseOptions are the release command's flags; set ones override fridaymorning.yaml.
type releaseOptions struct {
	runOptions
	image     string
	service   string
	stepsFlag string
	steps     []float64 // stepsFlag parsed
	bake      time.Duration
	gate      bool
	watchGate bool
}

func newReleaseCmd(root *rootOptions, stdout, stderr io.Writer) *cobra.Command {
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
  7  aborted for an error: an API failed or the release record was removed (e.g. by a docker stack
     deploy of the service's stack); traffic is back on the untouched stable and the canary is removed

Secrets come from the environment or files, never from flags or the config file itself:
  FRIDAYMORNING_DATAPLANE_PASSWORD (or haproxy.password_file)
  FRIDAYMORNING_INFLUXDB_TOKEN     (or influxdb.token_file)`,
		Example: `  fridaymorning release --config fridaymorning.yaml --image registry.example.com/shop:v2
  fridaymorning release --image shop:v2 --steps 5,20,50 --bake 2m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			return runRelease(cmd.Context(), opts, stdout, stderr)
		},
	}
	opts.addFlags(cmd, root)
	f := cmd.Flags()
	f.StringVar(&opts.image, "image", "", "image to release (required)")
	f.StringVar(&opts.service, "service", "", "stable Swarm service (overrides service:)")
	f.StringVar(&opts.stepsFlag, "steps", "", "canary shares in percent, e.g. 10,25,50 (overrides steps:)")
	f.DurationVar(&opts.bake, "bake", 0, "how long each step runs before it is judged (overrides bake:)")
	f.BoolVar(&opts.gate, "pause-before-promote", false, "stop once every step passed, canary at its last share, for a later `fridaymorning promote` or `abort` (exit 5)")
	f.BoolVar(&opts.watchGate, "watch-at-gate", false, "with --pause-before-promote: keep watching the canary with early looks at the gate until `fridaymorning promote` or `abort` asks this process (overrides promote.watch_at_gate)")
	_ = cmd.MarkFlagRequired("image")
	return cmd
}

// validate checks the flags and parses --steps.
func (o *releaseOptions) validate() error {
	if o.stepsFlag != "" {
		steps, err := parseSteps(o.stepsFlag)
		if err != nil {
			return &exitErr{exitUsage, err}
		}
		o.steps = steps
	}
	return o.runOptions.validate()
}

// runRelease releases opts.image to the service of the config, with the flags' overrides.
func runRelease(ctx context.Context, opts releaseOptions, stdout, stderr io.Writer) error {
	fc, err := opts.config.load()
	if err != nil {
		return err
	}
	if opts.service != "" {
		fc.Service = opts.service
	}
	if opts.steps != nil {
		fc.Steps = opts.steps
	}
	if opts.bake != 0 {
		fc.Bake = duration(opts.bake)
	}
	if opts.gate {
		fc.Promote.PauseBefore = true
	}
	if opts.watchGate {
		fc.Promote.WatchAtGate = true
	}
	return drive(ctx, opts.runOptions, fc, opts.image, stdout, stderr, func(ctx context.Context, e *release.Engine) (release.Outcome, error) {
		return e.Run(ctx)
	}, exitCodeFor)
}
