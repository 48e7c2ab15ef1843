package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/headless"
	"github.com/fridaymorning/fridaymorning/release"
)

// superviseOptions are the supervise command's flags.
type superviseOptions struct {
	configs  []string
	interval time.Duration
	output   string
}

func newSuperviseCmd(stdout io.Writer) *cobra.Command {
	opts := &superviseOptions{}
	cmd := &cobra.Command{
		Use:   "supervise",
		Short: "Watch over the releases of the configured services: take over any whose process is gone",
		Long: `Watch over the release of each service a --config names, so that a laptop closing or a CI job being
cancelled never leaves users on an unsupervised canary. Run it as a small Swarm service (one replica on a
manager, see stacks/production/stack.yml).

Every --interval it looks at each service's release. One whose driving process shows no sign of life for
state.stale_after (or that a halted process let go) is taken over: while its canary starts or bakes it
is aborted, or resumed with state.on_stale: resume; a promotion, a standby and a rollback are finished and
an abort carried through. A paused release (at the promotion gate, or inconclusive) is watched where it
stands with early looks, so that a canary that starts failing is aborted; ` + "`fridaymorning promote`" + ` then
asks the supervisor, which judges a fresh window before promoting. Stopping the supervisor hands a watched
release back, paused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(opts.output); err != nil {
				return err
			}
			if err := checkPositive(cmd.Flags(), "interval", opts.interval, "2s"); err != nil {
				return err
			}
			return runSupervise(cmd.Context(), *opts, stdout)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.configs, "config", "c", []string{defaultConfigPath}, "config file of a service to watch over (repeat for several)")
	f.DurationVar(&opts.interval, "interval", 2*time.Second, "how often each service's release is looked at")
	f.StringVarP(&opts.output, "output", "o", headless.OutputText, "text (logfmt lines) or json (one object per event)")
	return cmd
}

// runSupervise watches over every configured service until interrupted.
func runSupervise(ctx context.Context, opts superviseOptions, stdout io.Writer) error {
	var fcs []*fileConfig
	for _, path := range opts.configs {
		fc, err := loadConfig(path, true)
		if err != nil {
			return &exitErr{exitError, err}
		}
		if fc.Service == "" {
			return &exitErr{exitUsage, fmt.Errorf("%s names no service: set service: in it", path)}
		}
		if _, err := onStaleMode(fc); err != nil {
			return &exitErr{exitUsage, err}
		}
		if err := fc.checkRequired(); err != nil {
			return &exitErr{exitError, fmt.Errorf("%s: %w", path, err)}
		}
		fcs = append(fcs, fc)
	}
	out, err := headless.New(stdout, headless.Options{Output: opts.output})
	if err != nil {
		return &exitErr{exitUsage, err}
	}
	log := headless.NewLogger(stdout)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var wg sync.WaitGroup
	for _, fc := range fcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			supervise(ctx, fc, opts.interval, out, log)
		}()
	}
	log.Info(fmt.Sprintf("watching over %d service(s) every %s", len(fcs), opts.interval), headless.KeyEvent, "supervising")
	wg.Wait()
	log.Info("stopped", headless.KeyEvent, "supervising")
	return nil
}

// onStaleMode is what state.on_stale asks for a stale release that starts or bakes.
func onStaleMode(fc *fileConfig) (release.ResumeMode, error) {
	switch fc.State.OnStale {
	case "", "abort":
		return release.ResumeAbort, nil
	case "resume":
		return release.ResumeContinue, nil
	}
	return "", fmt.Errorf("state.on_stale %q: want abort or resume", fc.State.OnStale)
}

// superviseMode is what the supervisor does with rec, whose process is gone.
func superviseMode(fc *fileConfig, rec *release.Record) release.ResumeMode {
	switch {
	case rec.Outcome == release.OutcomePaused || rec.Held:
		return release.ResumeWatch
	case rec.Phase == release.PhaseStarting || rec.Phase == release.PhaseBaking || rec.Phase == release.PhasePreflight:
		mode, _ := onStaleMode(fc)
		return mode
	}
	// Promoting, standby, rolling back, aborting: finishing is the way out.
	return release.ResumeContinue
}

// supervise looks at fc's service every interval and takes over its release when its process is gone.
// After a take-over that leaves the release active (a halt: it needs a human), it waits longer before
// trying again, up to five minutes.
func supervise(ctx context.Context, fc *fileConfig, interval time.Duration, out *headless.Printer, log *slog.Logger) {
	wait := interval
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = interval
		sw, rec, err := fc.loadRecord(ctx)
		if err != nil {
			log.Warn(fc.Service+": "+err.Error(), headless.KeyEvent, "supervising")
			continue
		}
		if !rec.Active() {
			sw.Close()
			continue
		}
		_, alive, err := release.Liveness(ctx, sw, rec, fc.staleAfter(), time.Now())
		sw.Close()
		if alive || err != nil {
			continue
		}
		mode := superviseMode(fc, rec)
		log.Info(fmt.Sprintf("no process drives %s: taking it over (%s)", rec.Summary(), mode), headless.KeyEvent, "supervising", headless.KeyRelease, rec.ID)
		w, err := wire(fc, "", out.Event)
		if err != nil {
			log.Warn(fc.Service+": "+err.Error(), headless.KeyEvent, "supervising")
			continue
		}
		outcome, err := w.engine.Resume(ctx, mode, release.ResumeOptions{By: "fridaymorning supervise (its process was gone)"})
		w.Close()
		if err != nil {
			log.Warn(fmt.Sprintf("%s: %v", rec.ID, err), headless.KeyEvent, "supervising", headless.KeyRelease, rec.ID, headless.KeyOutcome, string(outcome))
			wait = min(5*time.Minute, 30*interval)
			continue
		}
		log.Info(fmt.Sprintf("%s ended %s", rec.ID, outcome), headless.KeyEvent, "supervising", headless.KeyRelease, rec.ID, headless.KeyOutcome, string(outcome))
	}
}
