package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/fridaymorning/fridaymorning/headless"
	"github.com/fridaymorning/fridaymorning/internal/crashpoint"
	"github.com/fridaymorning/fridaymorning/release"
)

// drive wires an engine for fc, runs it with run under interrupt handling, shows its events in the
// cockpit or as headless output, writes the --report and --dotenv files, and maps the outcome to an exit
// code with code.
func drive(ctx context.Context, opts runOptions, fc *fileConfig, image string, stdout, stderr io.Writer,
	run func(context.Context, *release.Engine) (release.Outcome, error), code func(release.Outcome) int) error {
	out, err := opts.printer(stdout)
	if err != nil {
		return &exitErr{exitUsage, err}
	}
	sk := &sink{out: out}
	var finished string
	crash := crashpoint.Hook()
	w, err := wire(fc, image, func(ev release.Event) {
		if ev.Kind == release.KindFinished {
			finished = ev.Message
		}
		sk.event(ev)
		crash(ev)
	})
	if err != nil {
		c := exitError
		warn(stderr, out.Finish(headless.Result{Service: fc.Service, Outcome: release.OutcomeFailed, ExitCode: c, Message: err.Error()}))
		return &exitErr{c, err}
	}
	defer w.Close()

	ctx, stop := interruptible(ctx, stderr)
	defer stop()
	var outcome release.Outcome
	if opts.cockpit(stdout) {
		outcome, err = cockpit(ctx, w, sk, stdout, func(ctx context.Context) (release.Outcome, error) { return run(ctx, w.engine) })
	} else {
		outcome, err = run(ctx, w.engine)
	}
	c := code(outcome)
	msg := finished
	if err != nil {
		msg = err.Error()
	}
	// A file that cannot be written is said on stderr and does not change the exit code.
	warn(stderr, out.Finish(headless.Result{Service: fc.Service, Release: w.engine.ID(), Outcome: outcome, ExitCode: c, Message: msg}))
	if c == 0 {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("release %s %s: %s", w.engine.ID(), outcome, finished)
	}
	return &exitErr{c, err}
}

// warn says err on stderr, one line per error it joins.
func warn(stderr io.Writer, err error) {
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		fmt.Fprintln(stderr, "fridaymorning:", e)
	}
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
