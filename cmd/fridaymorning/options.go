package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fridaymorning/fridaymorning/headless"
)

// defaultConfigPath is the config file read when --config is not given; it may be absent.
const defaultConfigPath = "fridaymorning.yaml"

// configOptions is --config, which every command but drill has.
type configOptions struct {
	path string
	flag *pflag.Flag
}

// addFlag adds --config to cmd, described by usage.
func (o *configOptions) addFlag(cmd *cobra.Command, usage string) {
	cmd.Flags().StringVarP(&o.path, "config", "c", defaultConfigPath, usage)
	o.flag = cmd.Flags().Lookup("config")
}

// load loads the --config file, which must exist; without --config, fridaymorning.yaml if there is one.
func (o *configOptions) load() (*fileConfig, error) {
	var fc *fileConfig
	var err error
	if o.flag != nil && o.flag.Changed {
		if strings.TrimSpace(o.path) == "" {
			return nil, &exitErr{exitUsage, fmt.Errorf("--config %q: name the config file, or leave --config out to read ./%s", o.path, defaultConfigPath)}
		}
		fc, err = loadConfig(o.path, true)
	} else {
		fc, err = loadConfig(defaultConfigPath, false)
	}
	if err != nil {
		return nil, &exitErr{exitError, err}
	}
	return fc, nil
}

// loadService loads the config of a command on one service, which args names (else the config's
// service:).
func (o *configOptions) loadService(args []string, command string) (*fileConfig, error) {
	fc, err := o.load()
	if err != nil {
		return nil, err
	}
	if len(args) == 1 {
		fc.Service = args[0]
	}
	if fc.Service == "" {
		return nil, &exitErr{exitUsage, fmt.Errorf("name the service: fridaymorning %s SERVICE", command)}
	}
	return fc, nil
}

// runOptions are the flags of the commands that carry a release out: release, resume, abort, promote
// and rollback.
type runOptions struct {
	root   *rootOptions
	config configOptions
	output string
	report string
	dotenv string
}

// addFlags adds the flags of the commands that carry a release out to cmd.
func (o *runOptions) addFlags(cmd *cobra.Command, root *rootOptions) {
	o.root = root
	o.config.addFlag(cmd, "config file")
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", headless.OutputText, "headless output: text (logfmt lines) or json (one object per event)")
	f.StringVar(&o.report, "report", "", "write a JUnit XML report here: one test case per step's analysis (GitLab shows it as test results)")
	f.StringVar(&o.dotenv, "dotenv", "", "write the outcome here as a dotenv file for later CI jobs")
}

// validate checks the flags that are set: --output, and that --report and --dotenv, if given, name a
// file.
func (o *runOptions) validate(flags *pflag.FlagSet) error {
	for _, f := range []struct{ name, value string }{{"report", o.report}, {"dotenv", o.dotenv}} {
		if flags.Changed(f.name) && strings.TrimSpace(f.value) == "" {
			return &exitErr{exitUsage, fmt.Errorf("--%s %q: name the file to write, or leave --%s out", f.name, f.value, f.name)}
		}
	}
	return checkOutput(o.output)
}

// checkPositive refuses a duration flag that is set to zero or less.
func checkPositive(flags *pflag.FlagSet, name string, d time.Duration, example string) error {
	if flags.Changed(name) && d <= 0 {
		return &exitErr{exitUsage, fmt.Errorf("--%s %s: want a positive duration such as %s", name, d, example)}
	}
	return nil
}

// printer returns the headless output the flags ask for, with GitLab's collapsible sections around
// each step when running in GitLab CI.
func (o *runOptions) printer(w io.Writer) (*headless.Printer, error) {
	return headless.New(w, headless.Options{Output: o.output, Sections: os.Getenv("GITLAB_CI") == "true", Report: o.report, Dotenv: o.dotenv})
}

// cockpit says whether to open the terminal UI rather than line output.
func (o *runOptions) cockpit(stdout io.Writer) bool {
	return o.output != headless.OutputJSON && wantCockpit(stdout, o.root.headless)
}

// checkOutput checks the --output of a command: text or json.
func checkOutput(output string) error {
	if output != headless.OutputText && output != headless.OutputJSON {
		return &exitErr{exitUsage, fmt.Errorf("--output %q: want text or json", output)}
	}
	return nil
}

// wantCockpit says whether to open the terminal UI: stdout is a terminal, --headless is not given and
// this is no CI job (CI=true, which GitLab and others set).
func wantCockpit(stdout io.Writer, headlessFlag bool) bool {
	if headlessFlag || os.Getenv("CI") == "true" || os.Getenv("CI") == "1" {
		return false
	}
	f, ok := stdout.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}
