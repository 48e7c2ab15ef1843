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

Output is one line per event. Exit codes:
  0  promoted
  1  error: the release could not be carried out (the message says what state was left behind)
  2  usage: bad flags
  3  aborted by analysis: the canary was judged bad (or never became healthy)
  4  aborted by an operator (interrupted)
  5  aborted as inconclusive: too little data to judge

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
	_ = cmd.MarkFlagRequired("image")
	return cmd
}

func runRelease(ctx context.Context, opts releaseOptions, stdout, stderr io.Writer) error {
	path, required := opts.configPath, true
	if path == "" {
		path, required = "fridaymorning.yaml", false
	}
	fc, err := loadConfig(path, required)
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

	out := newHeadless(stdout)
	var finished string
	w, err := wire(fc, opts.image, func(ev release.Event) {
		out.Event(ev)
		if ev.Kind == release.KindFinished {
			finished = ev.Message
		}
	})
	if err != nil {
		return &exitErr{exitError, err}
	}
	defer w.Close()

	// The first interrupt aborts the release safely; a second one exits at once.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
		case <-ctx.Done():
			return
		}
		fmt.Fprintln(stderr, "fridaymorning: interrupted: aborting the release safely (interrupt again to exit at once, leaving it as it is)")
		cancel()
		if _, ok := <-sigs; ok {
			fmt.Fprintln(stderr, "fridaymorning: second interrupt: exiting without cleaning up")
			os.Exit(exitAbortedOperator)
		}
	}()

	outcome, err := w.engine.Run(ctx)
	code := exitCodeFor(outcome)
	if code == exitPromoted {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("release %s %s: %s", w.engine.ID(), outcome, finished)
	}
	return &exitErr{code, err}
}
