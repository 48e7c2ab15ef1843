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
	stackFile string
	stack     string
	service   string
	stepsFlag string
	steps     []float64 // stepsFlag parsed
	bake      time.Duration
	// gate is --pause-before-promote and watchGate --watch-at-gate; gateSet and watchGateSet say whether
	// they were given (=false overrides the config's true).
	gate, gateSet           bool
	watchGate, watchGateSet bool
}

func newReleaseCmd(root *rootOptions, stdout, stderr io.Writer) *cobra.Command {
	return releaseCommand(&releaseOptions{}, root, stdout, stderr)
}

// releaseCommand is the release command, with its flags in opts.
func releaseCommand(opts *releaseOptions, root *rootOptions, stdout, stderr io.Writer) *cobra.Command {
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
			if err := opts.validate(cmd.Flags()); err != nil {
				return err
			}
			return runRelease(cmd.Context(), *opts, stdout, stderr)
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

// validate checks the flags that are set and parses --steps: a flag given is used or refused, never
// ignored, so an empty or zero value (which would mean "not set") is a usage error.
func (o *releaseOptions) validate(flags *pflag.FlagSet) error {
	usage := func(format string, a ...any) error { return &exitErr{exitUsage, fmt.Errorf(format, a...)} }
	if flags.Changed("image") && strings.TrimSpace(o.image) == "" {
		return usage("--image %q: name the image to release, e.g. --image registry.example.com/shop:v2", o.image)
	}
	if o.image != "" {
		if err := swarm.ParseImage(o.image); err != nil {
			return usage("--image %w", err)
		}
	}
	for _, f := range []struct{ name, value, what, key string }{
		{"service", o.service, "the stable Swarm service", "service:"},
		{"stack-file", o.stackFile, "the stack file", "stack_file:"},
		{"stack", o.stack, "the stack", "stack:"},
	} {
		if flags.Changed(f.name) && strings.TrimSpace(f.value) == "" {
			return usage("--%s %q: name %s, or leave --%s out to use %s of fridaymorning.yaml", f.name, f.value, f.what, f.name, f.key)
		}
	}
	if o.image != "" && o.stackFile != "" {
		return usage("--image and --stack-file both given: release the stack file's spec, or an image alone")
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
	o.watchGateSet = flags.Changed("watch-at-gate")
	return o.runOptions.validate(flags)
}

// apply overrides fc with the flags that are set, and says, as a usage error, when there is nothing to
// release or the stack file's service cannot be named.
func (o *releaseOptions) apply(fc *fileConfig) error {
	if o.service != "" {
		fc.Service = o.service
	}
	if o.stackFile != "" {
		fc.StackFile = o.stackFile
	}
	if o.stack != "" {
		fc.Stack = o.stack
	}
	switch {
	case o.image != "":
		fc.StackFile = "" // --image is the shortcut for an image alone, whatever stack_file: says
	case fc.StackFile == "":
		return &exitErr{exitUsage, fmt.Errorf("nothing to release: pass --image IMAGE, or --stack-file stack.yml for the service's whole spec")}
	}
	if err := fc.stackService(); err != nil {
		return &exitErr{exitUsage, err}
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
	if o.watchGateSet {
		fc.Promote.WatchAtGate = o.watchGate
	}
	return nil
}

// runRelease releases opts.image to the service of the config, with the flags' overrides.
func runRelease(ctx context.Context, opts releaseOptions, stdout, stderr io.Writer) error {
	fc, err := opts.config.load()
	if err != nil {
		return err
	}
	if err := opts.apply(fc); err != nil {
		return err
	}
	return drive(ctx, opts.runOptions, fc, opts.image, stdout, stderr, func(ctx context.Context, e *release.Engine) (release.Outcome, error) {
		return e.Run(ctx)
	}, exitCodeFor)
}
