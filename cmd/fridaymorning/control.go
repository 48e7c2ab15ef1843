package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/swarm"
)

// controlOptions are the flags of resume, abort and promote.
type controlOptions struct {
	configPath string
	force      bool
	timeout    time.Duration
}

func newControlCmd(mode release.ResumeMode, stdout, stderr io.Writer) *cobra.Command {
	var opts controlOptions
	short := map[release.ResumeMode]string{
		release.ResumeContinue: "Continue a release whose process died, from where it stood",
		release.ResumeAbort:    "Abort the release of SERVICE, wherever it was started: traffic back to stable, canary removed",
		release.ResumePromote:  "Promote the release of SERVICE now, skipping its remaining steps, wherever it was started",
		release.ResumeRollback: "Roll a promoted release of SERVICE back to the warm standby of its previous version",
	}[mode]
	long := short + `.

The release is found in Swarm, where every fridaymorning keeps its state. If the process driving it is
alive (another terminal, a CI job), it is asked to do it and this command follows the release until it
ends; if that process died, this one takes the release over and does it itself.`
	if mode == release.ResumeContinue {
		long = short + `.

The release is found in Swarm, where every fridaymorning keeps its state: a step being baked is baked
again, a promotion or an abort is carried through. It refuses a release whose process is still alive
(its heartbeat is fresh) unless --force.`
	}
	cmd := &cobra.Command{
		Use:   string(mode) + " [SERVICE]",
		Short: short,
		Long:  long,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("config") {
				opts.configPath = ""
			}
			return runControl(cmd.Context(), mode, opts, args, stdout, stderr)
		},
	}
	cmd.Flags().StringVarP(&opts.configPath, "config", "c", "fridaymorning.yaml", "config file")
	cmd.Flags().BoolVar(&opts.force, "force", false, "take the release over even if its process seems alive")
	cmd.Flags().DurationVar(&opts.timeout, "timeout", 15*time.Minute, "how long to follow a release another process carries out")
	addRunFlags(cmd)
	return cmd
}

// serviceConfig loads the --config file for a command on one service, which its first argument names
// (else the config's service:).
func serviceConfig(configPath string, args []string, command string) (*fileConfig, error) {
	fc, err := loadConfigFlag(configPath)
	if err != nil {
		return nil, &exitErr{exitError, err}
	}
	if len(args) == 1 {
		fc.Service = args[0]
	}
	if fc.Service == "" {
		return nil, &exitErr{exitUsage, fmt.Errorf("name the service: fridaymorning %s SERVICE", command)}
	}
	return fc, nil
}

func runControl(ctx context.Context, mode release.ResumeMode, opts controlOptions, args []string, stdout, stderr io.Writer) error {
	fc, err := serviceConfig(opts.configPath, args, string(mode))
	if err != nil {
		return err
	}
	// Which outcome counts as success depends on what was asked.
	code := exitCodeFor
	switch mode {
	case release.ResumeAbort:
		code = func(o release.Outcome) int {
			switch o {
			case release.OutcomeAbortedOperator, release.OutcomeAbortedAnalysis, release.OutcomeAbortedInconclusive:
				return 0
			}
			return exitError
		}
	case release.ResumePromote:
		code = func(o release.Outcome) int {
			if o == release.OutcomePromoted {
				return 0
			}
			return exitError
		}
	case release.ResumeRollback:
		code = func(o release.Outcome) int {
			if o == release.OutcomeRolledBack {
				return 0
			}
			return exitError
		}
	}

	if mode != release.ResumeContinue && !opts.force {
		sw, err := swarm.New(swarm.Config{Host: fc.Docker.Host})
		if err != nil {
			return &exitErr{exitError, err}
		}
		defer sw.Close()
		rec, err := release.Load(ctx, sw, fc.Service)
		if err != nil {
			return &exitErr{exitError, err}
		}
		if !rec.Active() {
			return &exitErr{exitError, fmt.Errorf("service %s has no release in progress%s", fc.Service, lastRelease(rec))}
		}
		if _, alive, err := release.Liveness(ctx, sw, rec, fc.staleAfter(), time.Now()); err == nil && alive {
			return ask(ctx, sw, fc.Service, rec, release.Command(mode), opts.timeout, stdout, code)
		}
	}
	return drive(ctx, fc, "", stdout, stderr, func(ctx context.Context, e *release.Engine) (release.Outcome, error) {
		return e.Resume(ctx, mode, release.ResumeOptions{Force: opts.force})
	}, code)
}

func lastRelease(rec *release.Record) string {
	if rec == nil {
		return ""
	}
	return fmt.Sprintf(" (the last one, %s, ended %s)", rec.ID, rec.Outcome)
}

// ask requests cmd from the live process driving the release and follows the record until the release
// ends, printing each change of phase or step.
func ask(ctx context.Context, sw *swarm.Client, service string, rec *release.Record, cmd release.Command, timeout time.Duration,
	stdout io.Writer, code func(release.Outcome) int) error {
	if _, err := release.Request(ctx, sw, service, cmd); err != nil {
		return &exitErr{exitError, err}
	}
	out := newHeadless(stdout)
	out.log.Info(fmt.Sprintf("asked %s, which drives %s, to %s", rec.Owner, rec.ID, cmd), keyEvent, "requested", keyRelease, rec.ID)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		cur, err := release.Load(ctx, sw, service)
		if err == nil && cur != nil {
			if pos := fmt.Sprintf("%s/%d", cur.Phase, cur.Step); pos != last {
				last = pos
				attrs := []any{keyEvent, "followed", keyRelease, cur.ID, keyPhase, string(cur.Phase)}
				if cur.Outcome != "" {
					attrs = append(attrs, keyOutcome, string(cur.Outcome))
				}
				out.log.Info(cur.Message, attrs...)
			}
			if cur.ID != rec.ID || !cur.Active() {
				if c := code(cur.Outcome); c != 0 {
					return &exitErr{c, fmt.Errorf("release %s ended %s: %s", cur.ID, cur.Outcome, cur.Message)}
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return &exitErr{exitError, fmt.Errorf("release %s did not end within %s after asking it to %s: see fridaymorning status %s", rec.ID, timeout, cmd, service)}
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// newSteerCmd is pause or continue: a bake command for the process driving the release.
func newSteerCmd(cmd release.Command, stdout io.Writer) *cobra.Command {
	var configPath string
	short := map[release.Command]string{
		release.CommandPause:    "Pause the bake of SERVICE's release: its clock stops, traffic stays, early looks go on",
		release.CommandContinue: "Continue a paused bake of SERVICE's release",
	}[cmd]
	c := &cobra.Command{
		Use:   string(cmd) + " [SERVICE]",
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if !c.Flags().Changed("config") {
				configPath = ""
			}
			fc, err := serviceConfig(configPath, args, string(cmd))
			if err != nil {
				return err
			}
			sw, err := swarm.New(swarm.Config{Host: fc.Docker.Host})
			if err != nil {
				return &exitErr{exitError, err}
			}
			defer sw.Close()
			ctx := c.Context()
			rec, err := release.Load(ctx, sw, fc.Service)
			if err != nil {
				return &exitErr{exitError, err}
			}
			if !rec.Active() || rec.Phase != release.PhaseBaking {
				return &exitErr{exitError, fmt.Errorf("service %s has no release baking a step%s", fc.Service, lastRelease(rec))}
			}
			if _, alive, err := release.Liveness(ctx, sw, rec, fc.staleAfter(), time.Now()); err != nil || !alive {
				return &exitErr{exitError, fmt.Errorf("no live process drives %s: `fridaymorning resume %s` takes it up", rec.ID, fc.Service)}
			}
			if _, err := release.Request(ctx, sw, fc.Service, cmd); err != nil {
				return &exitErr{exitError, err}
			}
			newHeadless(stdout).log.Info(fmt.Sprintf("asked %s, which drives %s, to %s", rec.Owner, rec.ID, cmd), keyEvent, "requested", keyRelease, rec.ID)
			return nil
		},
	}
	c.Flags().StringVarP(&configPath, "config", "c", "fridaymorning.yaml", "config file")
	return c
}
