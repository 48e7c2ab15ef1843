// Package headless renders a release's events for terminals without the cockpit and for CI jobs: one
// logfmt line (or JSON object) per event, GitLab CI's collapsible sections around each step, a JUnit XML
// report with the evidence of each analysis, and a dotenv file with the outcome for later jobs.
package headless

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/fridaymorning/fridaymorning/release"
)

// The output formats of Options.Output.
const (
	// OutputText is one logfmt line per event (the default).
	OutputText = "text"
	// OutputJSON is one JSON object per event.
	OutputJSON = "json"
)

// Options say what headless output a release gets. The zero value is text lines and no files.
type Options struct {
	// Output is OutputText ("" too) or OutputJSON.
	Output string
	// Sections wraps text output in GitLab CI's collapsible sections: one per step, and one each for
	// starting, promoting and aborting. JSON lines stay one object per line.
	Sections bool
	// Report is where Finish writes a JUnit XML report; "" writes none.
	Report string
	// Dotenv is where Finish writes the outcome as a dotenv file for later CI jobs; "" writes none.
	Dotenv string
}

// Result is how a release ended, as the report and the dotenv file tell it.
type Result struct {
	Service string
	// Release is the release's ID; "" when it could not even start.
	Release  string
	Outcome  release.Outcome
	ExitCode int
	// Message says why it ended so: the engine's last word, or the error that stopped it.
	Message string
}

// eventWriter prints events, one line or more each.
type eventWriter interface {
	Event(ev release.Event)
}

// Printer prints a release's events and keeps what Finish needs for the report and the dotenv file.
// Its methods may be called from several goroutines.
type Printer struct {
	lines eventWriter
	opts  Options

	mu     sync.Mutex
	image  string // the image released, from the events
	report *junit // nil without Options.Report
}

// New returns the printer of opts, writing lines to w.
func New(w io.Writer, opts Options) (*Printer, error) {
	p := &Printer{opts: opts}
	switch opts.Output {
	case "", OutputText:
		p.lines = newText(w)
		if opts.Sections {
			p.lines = &sections{w: w, next: p.lines}
		}
	case OutputJSON:
		p.lines = newJSONLines(w)
	default:
		return nil, fmt.Errorf("headless: output %q: want %s or %s", opts.Output, OutputText, OutputJSON)
	}
	if opts.Report != "" {
		p.report = &junit{}
	}
	return p, nil
}

// Event prints ev and records it for the report and the dotenv file.
func (p *Printer) Event(ev release.Event) {
	p.Record(ev)
	p.lines.Event(ev)
}

// Record records ev for the report and the dotenv file without printing it: for the events another
// front end (the cockpit) shows.
func (p *Printer) Record(ev release.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.Image != "" {
		p.image = ev.Image
	}
	if p.report != nil {
		p.report.Event(ev)
	}
}

// Finish writes the report and the dotenv file that Options name, once the release ended as r. A
// release that never emitted an event still gets a report with its outcome. The error names each file
// that could not be written.
func (p *Printer) Finish(r Result) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	if p.report != nil {
		if p.report.release == "" {
			p.report.Event(release.Event{Time: time.Now(), Kind: release.KindFinished, ReleaseID: r.Release, Service: r.Service, Outcome: r.Outcome, Message: r.Message})
		}
		if err := p.report.write(p.opts.Report); err != nil {
			errs = append(errs, fmt.Errorf("writing the report %s: %w", p.opts.Report, err))
		}
	}
	if p.opts.Dotenv != "" {
		err := writeDotenv(p.opts.Dotenv, map[string]string{
			"FRIDAYMORNING_OUTCOME":   string(r.Outcome),
			"FRIDAYMORNING_EXIT_CODE": fmt.Sprint(r.ExitCode),
			"FRIDAYMORNING_RELEASE":   r.Release,
			"FRIDAYMORNING_SERVICE":   r.Service,
			"FRIDAYMORNING_IMAGE":     p.image,
			"FRIDAYMORNING_MESSAGE":   r.Message,
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("writing the dotenv file %s: %w", p.opts.Dotenv, err))
		}
	}
	return errors.Join(errs...)
}
