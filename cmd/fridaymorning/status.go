package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/release"
)

// statusOptions are the status command's flags.
type statusOptions struct {
	config configOptions
	output string
}

func newStatusCmd(stdout io.Writer) *cobra.Command {
	var opts statusOptions
	cmd := &cobra.Command{
		Use:   "status [SERVICE]",
		Short: "Show the release of a service (or of every service) as kept in Swarm",
		Long: `Show the release of SERVICE as kept in Swarm, from any terminal or CI job: its phase, step,
weights, images, last verdict, who started it and when, and whether the process driving it is alive.
Without SERVICE: the service of fridaymorning.yaml, or else every service with a release record.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(opts.output); err != nil {
				return err
			}
			return runStatus(cmd.Context(), opts, args, stdout)
		},
	}
	opts.config.addFlag(cmd, "config file (for docker.host and service)")
	cmd.Flags().StringVarP(&opts.output, "output", "o", "text", "text or json")
	return cmd
}

// statusView is what status shows of one service's release.
type statusView struct {
	Service       string          `json:"service"`
	Record        *release.Record `json:"record"`
	LastHeartbeat *time.Time      `json:"last_heartbeat,omitempty"`
	// Alive: the process driving an active release showed a sign of life recently.
	Alive bool `json:"alive"`
	// Recovered: the stable service had no record; this one was found on its canary.
	Recovered bool `json:"recovered,omitempty"`
}

// runStatus shows the release of the services args name, or of the config's service, or of every
// service with a release record.
func runStatus(ctx context.Context, opts statusOptions, args []string, stdout io.Writer) error {
	fc, err := opts.config.load()
	if err != nil {
		return err
	}
	sw, err := fc.swarmClient()
	if err != nil {
		return err
	}
	defer sw.Close()

	services := args
	if len(services) == 0 && fc.Service != "" {
		services = []string{fc.Service}
	}
	if len(services) == 0 {
		all, err := sw.Releases(ctx)
		if err != nil {
			return &exitErr{exitError, err}
		}
		for name := range all {
			services = append(services, name)
		}
		sort.Strings(services)
	}
	var views []statusView
	for _, svc := range services {
		rec, err := release.Load(ctx, sw, svc)
		if err != nil {
			return &exitErr{exitError, err}
		}
		v := statusView{Service: svc, Record: rec, Recovered: rec != nil && rec.Recovered}
		if rec.Active() {
			last, alive, err := release.Liveness(ctx, sw, rec, fc.staleAfter(), time.Now())
			if err == nil {
				v.LastHeartbeat, v.Alive = &last, alive
			}
		}
		views = append(views, v)
	}
	if opts.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if len(args) == 1 || fc.Service != "" {
			return enc.Encode(views[0])
		}
		return enc.Encode(views)
	}
	if len(views) == 0 {
		fmt.Fprintln(stdout, "no service has a release record")
		return nil
	}
	for i, v := range views {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printStatus(stdout, v, time.Now())
	}
	return nil
}

func printStatus(w io.Writer, v statusView, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	row("service", "%s", v.Service)
	r := v.Record
	if r == nil {
		row("release", "none recorded")
		return
	}
	row("release", "%s", r.ID)
	if r.Recovered {
		row("record", "gone from %s (its labels were replaced, e.g. by `docker stack deploy`): found on the canary %s; the next command on it writes it back", v.Service, r.Canary)
	}
	phase := string(r.Phase)
	if r.Phase == release.PhaseBaking && r.Step > 0 {
		phase += fmt.Sprintf(" (step %d of %d: %s)", r.Step, len(r.Steps), release.FormatSteps(r.Steps))
	}
	if r.Active() && r.Outcome == release.OutcomeFailed {
		phase += " — stopped, needs an operator"
	}
	if r.Active() && r.Gate {
		phase += " — every step passed, waiting at the promotion gate"
	}
	if r.Progress != "" && (r.Phase == release.PhasePromoting || r.Phase == release.PhaseRollingBack) {
		phase += " (done: " + string(r.Progress) + ")"
	}
	row("phase", "%s", phase)
	if r.Outcome != "" {
		row("outcome", "%s", r.Outcome)
	}
	row("images", "%s → %s", r.StableImage, r.Image)
	if r.Phase == release.PhaseStandby && r.StandbyUntil != nil {
		row("standby", "%s on %s until %s (%s left): `fridaymorning rollback %s` sends traffic back to it",
			r.StableImage, r.Canary, r.StandbyUntil.UTC().Format(time.RFC3339), r.StandbyUntil.Sub(now).Round(time.Second), v.Service)
	}
	if r.Canary != "" {
		row("canary", "%s", r.Canary)
	}
	row("traffic", "canary %s%% (%s)", release.FormatPercent(r.CanaryPercent), release.FormatWeights(r.Weights))
	if lv := r.LastVerdict; lv != nil {
		age := ""
		if r.VerdictAt != nil {
			age = fmt.Sprintf(" (%s ago)", now.Sub(*r.VerdictAt).Round(time.Second))
		}
		row("last verdict", "step %d%s: %s: %s", lv.Step, age, lv.Result, lv.Reason)
	}
	if r.Message != "" {
		row("message", "%s", r.Message)
	}
	row("started", "%s by %s (%s ago)", r.StartedAt.UTC().Format(time.RFC3339), r.StartedBy, now.Sub(r.StartedAt).Round(time.Second))
	switch {
	case r.Active() && r.Owner == "":
		row("driven by", "no process: `fridaymorning promote|abort|resume %s` takes it up at once", v.Service)
	case r.Active():
		state := "alive"
		if !v.Alive {
			state = "no sign of life: continue it with `fridaymorning resume " + v.Service + "` or abort it with `fridaymorning abort " + v.Service + "`"
		}
		if v.LastHeartbeat != nil {
			row("driven by", "%s, last seen %s ago: %s", r.Owner, now.Sub(*v.LastHeartbeat).Round(time.Second), state)
		}
	}
}
