package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/release"
)

// releaseOptions are the release command's flags; set ones override fridaymorning.yaml.
type releaseOptions struct {
	runOptions
	image     string
	stackFile string
	stack     string
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
		Use:   "release --image IMAGE | --stack-file stack.yml [--stack NAME]",
		Short: "Release IMAGE, or the service's spec from a stack file, through a canary, step by step, then promote or abort",
		Long: `Release IMAGE to the configured Swarm service through a canary, or, with --stack-file, the service's
whole spec (image, env, configs, secrets, resources, healthcheck, command, labels) as docker stack deploy
-c stack.yml NAME would apply it: ${VAR}s come from the environment (not from .env, as docker stack deploy).
Preflight lists the spec difference, and refuses what a canary cannot carry (published ports, networks,
mode); new configs and secrets are created before the canary and removed again by an abort.

The canary service is created as a clone of the stable service with the new image (or spec); once its tasks run and
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
  fridaymorning release --stack-file stack.yml --stack shop --service app
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
	f.StringVar(&opts.image, "image", "", "image to release: the stable service's spec with this image")
	f.StringVar(&opts.stackFile, "stack-file", "", "release the service's whole spec from this stack file, as docker stack deploy -c would apply it (overrides stack_file:)")
	f.StringVar(&opts.stack, "stack", "", "the stack's name, with --stack-file (overrides stack:; default: --service up to its first _)")
	f.StringVar(&opts.service, "service", "", "stable Swarm service (overrides service:)")
	f.StringVar(&opts.stepsFlag, "steps", "", "canary shares in percent, e.g. 10,25,50 (overrides steps:)")
	f.DurationVar(&opts.bake, "bake", 0, "how long each step runs before it is judged (overrides bake:)")
	f.BoolVar(&opts.gate, "pause-before-promote", false, "stop once every step passed, canary at its last share, for a later `fridaymorning promote` or `abort` (exit 5)")
	f.BoolVar(&opts.watchGate, "watch-at-gate", false, "with --pause-before-promote: keep watching the canary with early looks at the gate until `fridaymorning promote` or `abort` asks this process (overrides promote.watch_at_gate)")
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
	if opts.stackFile != "" {
		fc.StackFile = opts.stackFile
	}
	if opts.stack != "" {
		fc.Stack = opts.stack
	}
	switch {
	case opts.image != "" && opts.stackFile != "":
		return &exitErr{exitUsage, fmt.Errorf("--image and --stack-file both given: release the stack file's spec, or an image alone")}
	case opts.image != "":
		fc.StackFile = "" // --image is the shortcut for an image alone, whatever stack_file: says
	case fc.StackFile == "":
		return &exitErr{exitUsage, fmt.Errorf("nothing to release: pass --image IMAGE, or --stack-file stack.yml for the service's whole spec")}
	}
	if err := fc.stackService(); err != nil {
		return &exitErr{exitUsage, err}
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
