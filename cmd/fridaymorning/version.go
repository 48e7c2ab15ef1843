package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/internal/buildinfo"
)

// versionOptions are the flags of fridaymorning version.
type versionOptions struct {
	output string
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	var opts versionOptions
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print fridaymorning's version, commit and build date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(opts, stdout)
		},
	}
	cmd.Flags().StringVar(&opts.output, "output", "text", "text or json")
	return cmd
}

func runVersion(opts versionOptions, stdout io.Writer) error {
	in := buildinfo.Get()
	switch opts.output {
	case "text":
		fmt.Fprintln(stdout, in.String())
	case "json":
		return json.NewEncoder(stdout).Encode(map[string]any{"version": in.Version, "commit": in.Commit, "date": in.Date,
			"go": in.GoVersion, "platform": in.Platform, "modified": in.Modified})
	default:
		return &exitErr{exitUsage, fmt.Errorf("--output %q: want text or json", opts.output)}
	}
	return nil
}
