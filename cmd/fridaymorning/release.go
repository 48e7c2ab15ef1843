package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/swarm"
)

// releaseOptions are the release command's flags; set ones override fridaymorning.yaml.
type releaseOptions struct {
	runOptions
	image     string
	service   string
	stepsFlag string
	steps     []float64 // stepsFlag parsed
	bake      time.Duration
	// gate is --pause-before-promote, gateSet whether it was given (=false overrides the config's true).
	gate, gateSet bool
}

func newReleaseCmd(root *rootOptions, stdout, stderr io.Writer) *cobra.Command {
	return releaseCommand(&releaseOptions{}, root, stdout, stderr)
}

// releaseCommand is the release command, with its flags in opts.
func releaseCommand(opts *releaseOptions, root *rootOptions, stdout, stderr io.Writer) *cobra.Command {
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
			if err := opts.validate(cmd.Flags()); err != nil {
				return err
			}
			return runRelease(cmd.Context(), *opts, stdout, stderr)
		},
	}
	opts.addFlags(cmd, root)
	f := cmd.Flags()
	f.StringVar(&opts.image, "image", "", "image to release (required)")
	f.StringVar(&opts.service, "service", "", "stable Swarm service (overrides service:)")
	f.StringVar(&opts.stepsFlag, "steps", "", "canary shares in percent, e.g. 10,25,50 (overrides steps:)")
	f.DurationVar(&opts.bake, "bake", 0, "how long each step runs before it is judged (overrides bake:)")
	f.BoolVar(&opts.gate, "pause-before-promote", false, "stop once every step passed, canary at its last share, for a later `fridaymorning promote` or `abort` (exit 5)")
	_ = cmd.MarkFlagRequired("image")
	return cmd
}

// validate checks the flags that are set and parses --steps: a flag given is used or refused, never
// ignored, so an empty or zero value (which would mean "not set") is a usage error.
func (o *releaseOptions) validate(flags *pflag.FlagSet) error {
	usage := func(format string, a ...any) error { return &exitErr{exitUsage, fmt.Errorf(format, a...)} }
	if strings.TrimSpace(o.image) == "" {
		return usage("--image %q: name the image to release, e.g. --image registry.example.com/shop:v2", o.image)
	}
	if err := swarm.ParseImage(o.image); err != nil {
		return usage("--image %w", err)
	}
	if flags.Changed("service") && strings.TrimSpace(o.service) == "" {
		return usage("--service %q: name the stable Swarm service, or leave --service out to use service: of fridaymorning.yaml", o.service)
	}
	if flags.Changed("steps") {
		if strings.TrimSpace(o.stepsFlag) == "" {
			return usage("--steps %q: give the canary's shares in percent, e.g. --steps 10,25,50, or leave --steps out to use steps: of fridaymorning.yaml", o.stepsFlag)
		}
		steps, err := parseSteps(o.stepsFlag)
		if err != nil {
			return &exitErr{exitUsage, err}
		}
		if err := release.ValidateSteps(steps); err != nil {
			return usage("--steps %s: %s", o.stepsFlag, strings.TrimPrefix(err.Error(), "release: "))
		}
		o.steps = steps
	}
	if flags.Changed("bake") && o.bake <= 0 {
		return usage("--bake %s: want a positive duration such as 1m, or leave --bake out to use bake: of fridaymorning.yaml", o.bake)
	}
	o.gateSet = flags.Changed("pause-before-promote")
	return o.runOptions.validate(flags)
}

// apply overrides fc with the flags that are set.
func (o *releaseOptions) apply(fc *fileConfig) {
	if o.service != "" {
		fc.Service = o.service
	}
	if o.steps != nil {
		fc.Steps = o.steps
	}
	if o.bake != 0 {
		fc.Bake = duration(o.bake)
	}
	if o.gateSet {
		fc.Promote.PauseBefore = o.gate
	}
}

// runRelease releases opts.image to the service of the config, with the flags' overrides.
func runRelease(ctx context.Context, opts releaseOptions, stdout, stderr io.Writer) error {
	fc, err := opts.config.load()
	if err != nil {
		return err
	}
	opts.apply(fc)
	return drive(ctx, opts.runOptions, fc, opts.image, stdout, stderr, func(ctx context.Context, e *release.Engine) (release.Outcome, error) {
		return e.Run(ctx)
	}, exitCodeFor)
}
