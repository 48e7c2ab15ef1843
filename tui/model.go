// Package tui is the operator's cockpit: a bubbletea program that shows a release as it happens (the
// split, the steps, canary against stable, the evidence behind every verdict) and steers it (promote,
// abort, pause, next step, nudge the share).
//
// The model never does I/O in Update or View: the release's events arrive as messages (EventMsg), and
// every request, probe and task poll runs as a command whose answer is a message, so the screen stays
// responsive while Docker, HAProxy or InfluxDB are slow or down, and says so.
//
// Files: model.go holds the model and dispatches messages, msgs.go the messages, commands.go every
// command, keys.go the key bindings and what they do, styles.go the theme; each part of the screen has
// a file of its own (header, split, steps, metrics, explain, trends, tasks, log, dialogs, help), and
// view.go puts them together.
package tui

import (
	"context"
	"fmt"
	"time"

	"github.com/charmbracelet/bubbles/help"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/fridaymorning/fridaymorning/release"
)

// Controller takes the operator's commands to the release: the engine of a release this process
// drives, a journal writer for one driven elsewhere. Request runs off the UI's goroutine, bounded by
// ctx; its error is shown to the operator.
type Controller interface {
	Request(ctx context.Context, cmd release.Command) error
}

// Probe checks one dependency (Docker, HAProxy, InfluxDB); the cockpit runs each every few seconds and
// shows how it answered.
type Probe struct {
	Name string
	Run  func(ctx context.Context) error
}

// Tasks reports the canary's and stable's task states in a few words each ("1/1 running").
type Tasks func(ctx context.Context) (canary, stable string, err error)

// QuitChoice is what the operator chose when leaving the cockpit before the release ended.
type QuitChoice int

// The choices.
const (
	// QuitNone: the release ended, or the cockpit has not been left.
	QuitNone QuitChoice = iota
	// QuitLeave: the release goes on; it can be watched or resumed later.
	QuitLeave
	// QuitPause: the release was paused, then left.
	QuitPause
	// QuitAbort: the release was asked to abort, then left.
	QuitAbort
)

// dialog is the overlay asking for confirmation, if any.
type dialog int

const (
	dialogNone dialog = iota
	dialogPromote
	dialogAbort
	dialogQuit
	// dialogNudge asks before a nudge takes the canary past the last planned step's share.
	dialogNudge
)

// probeState is a dependency's last answer. gen is the generation of the check that gave it: an
// answer of an older check, arriving late, is dropped.
type probeState struct {
	ok      bool
	took    time.Duration
	err     string
	at      time.Time
	pending bool
	gen     uint64
}

// Options configure a Model.
type Options struct {
	// Controller takes the operator's commands; nil makes the cockpit read-only.
	Controller Controller
	// Probes are checked every ProbeInterval (default 5s), Tasks polled every TaskInterval (default 2s).
	Probes        []Probe
	Tasks         Tasks
	ProbeInterval time.Duration
	TaskInterval  time.Duration
	// Watching says the release is driven by another process (fridaymorning watch).
	Watching bool
	// Theme defaults to plain (no colours); cmd/fridaymorning passes NewTheme(os.Stdout).
	Theme *Theme
	// Now is the clock (default time.Now); tests fix it.
	Now func() time.Time
}

// Model is the cockpit's state.
type Model struct {
	opts          Options
	th            Theme
	keys          keyMap
	hints         help.Model
	st            Status
	width, height int
	selected      int
	explain       bool
	help          bool
	dialog        dialog
	quit          QuitChoice
	sourceErr     string
	probes        map[string]*probeState
	tasksErr      string
	notice        string
	noticeAt      time.Time
	// probeGen is the generation of the last round of probes issued, tasksGen that of the last tasks
	// poll issued and tasksShown that of the poll whose answer is on screen. An answer older than the
	// one on screen came late and is dropped; one older than the last issued is not, or a Docker slower
	// than TaskInterval would never be shown.
	probeGen, tasksGen, tasksShown uint64
}

// New returns a cockpit with the given options.
func New(opts Options) Model {
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = 5 * time.Second
	}
	if opts.TaskInterval <= 0 {
		opts.TaskInterval = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	th := plainTheme()
	if opts.Theme != nil {
		th = *opts.Theme
	}
	m := Model{opts: opts, th: th, keys: defaultKeys(), hints: hints(th), width: 80, height: 24, probes: map[string]*probeState{}}
	for _, p := range opts.Probes {
		m.probes[p.Name] = &probeState{}
	}
	return m
}

// Status is what the cockpit knows of the release.
func (m Model) Status() Status { return m.st }

// QuitChoice is what the operator chose on leaving (QuitNone if the release ended first).
func (m Model) QuitChoice() QuitChoice { return m.quit }

// Init starts the clock, the probes and the task polls.
func (m Model) Init() tea.Cmd {
	return tea.Batch(tick(), immediately(probeTick{}), immediately(tasksTick{}))
}

// Update handles a message. It does no I/O: requests, probes and polls are returned as commands.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return m, nil
	case EventMsg:
		m.st.Apply(release.Event(msg))
		m.sourceErr = ""
		return m, nil
	case ErrMsg:
		if msg.Err != nil {
			m.sourceErr = msg.Err.Error()
		}
		return m, nil
	case tickMsg:
		return m, tick()
	case probeTick:
		return m.runProbes()
	case probeMsg:
		if p := m.probes[msg.name]; p != nil && msg.gen >= p.gen {
			*p = probeState{ok: msg.err == nil, took: msg.took, at: m.opts.Now(), gen: msg.gen}
			if msg.err != nil {
				p.err = msg.err.Error()
			}
		}
		return m, nil
	case tasksTick:
		return m.pollTasks()
	case tasksMsg:
		if msg.gen < m.tasksShown {
			return m, nil // a poll older than the one on screen answered late
		}
		m.tasksShown = msg.gen
		if msg.err != nil {
			m.tasksErr = msg.err.Error()
		} else {
			m.tasksErr = ""
			m.st.CanaryTasks, m.st.StableTasks = msg.canary, msg.stable
		}
		return m, nil
	case sentMsg:
		if msg.err != nil {
			m.notice, m.noticeAt = fmt.Sprintf("asking for %s failed: %v", msg.cmd, msg.err), m.opts.Now()
		}
		return m, nil
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

// runProbes checks every dependency that is not being checked already, each in a command of its own,
// and schedules the next round.
func (m Model) runProbes() (Model, tea.Cmd) {
	m.probeGen++
	cmds := []tea.Cmd{after(m.opts.ProbeInterval, probeTick{})}
	for _, p := range m.opts.Probes {
		st := m.probes[p.Name]
		if st.pending {
			continue
		}
		st.pending = true
		cmds = append(cmds, probe(p, m.probeGen))
	}
	return m, tea.Batch(cmds...)
}

// pollTasks asks for the task states, if there is a way to, and schedules the next poll.
func (m Model) pollTasks() (Model, tea.Cmd) {
	next := after(m.opts.TaskInterval, tasksTick{})
	if m.opts.Tasks == nil {
		return m, next
	}
	m.tasksGen++
	return m, tea.Batch(pollTasks(m.opts.Tasks, m.tasksGen), next)
}

// request asks the release to carry out cmd, off the UI's goroutine, and notes it on screen.
func (m *Model) request(cmd release.Command, notice string) tea.Cmd {
	m.notice, m.noticeAt = notice, m.opts.Now()
	if m.opts.Controller == nil {
		m.notice = "read-only: this cockpit cannot steer the release"
		return nil
	}
	return send(m.opts.Controller, cmd)
}

// active says whether the release can still be steered.
func (m Model) active() bool { return !m.st.Finished && !m.st.Phase.Done() }
