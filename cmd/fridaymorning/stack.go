package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/stackfile"
	"github.com/fridaymorning/fridaymorning/swarm"
)

// stackService names the Swarm service of a release from a stack file: with a stack name, a service
// given by its name in the stack file ("app") is the stack's ("shop_app"); without one, the stack is
// the part of the service's name before its first "_" (preflight refuses a wrong guess, naming the
// service's real stack).
func (fc *fileConfig) stackService() error {
	if fc.StackFile == "" {
		return nil
	}
	if fc.Stack == "" {
		stack, _, ok := strings.Cut(fc.Service, "_")
		if !ok || stack == "" {
			return fmt.Errorf("config: service %q with a stack file: name the stack too (--stack NAME or stack: in fridaymorning.yaml), or give the Swarm service as STACK_SERVICE", fc.Service)
		}
		fc.Stack = stack
	}
	if !strings.HasPrefix(fc.Service, fc.Stack+"_") {
		fc.Service = fc.Stack + "_" + fc.Service
	}
	return nil
}

// stackTarget loads fc's stack file, as docker stack deploy would deploy it (interpolated from this
// process's environment), and returns the release of fc.Service it describes; nil without a stack file.
func (fc *fileConfig) stackTarget() (*stackfile.Target, error) {
	if fc.StackFile == "" {
		return nil, nil
	}
	if err := fc.stackService(); err != nil {
		return nil, err
	}
	st, err := stackfile.Load(fc.StackFile, fc.Stack, os.Environ())
	if err != nil {
		return nil, err
	}
	return st.Target(fc.Service)
}

// reviewStack is the preflight of a release from a stack file: it checks what swarm.CheckSpec checks
// and hands the spec difference to the engine, which reports it on the check's event.
func reviewStack(sw *swarm.Client, service string) release.Preflight {
	return release.Preflight{
		Name: "stack file",
		Run:  func(context.Context) error { return nil },
		Review: func(ctx context.Context) ([]release.Change, error) {
			changes, err := sw.CheckSpec(ctx, service)
			out := make([]release.Change, len(changes))
			for i, c := range changes {
				out[i] = release.Change{Field: c.Field, From: c.From, To: c.To}
			}
			return out, err
		},
	}
}
