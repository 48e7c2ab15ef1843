// Package tui is the operator's cockpit: a bubbletea program that shows a release as it happens (the
// split, the steps, canary against stable, the evidence behind every verdict) and steers it (promote,
// abort, pause, next step, nudge the share).
//
// The model never does I/O in Update or View: the release's events arrive as messages (EventMsg), and
// every request, probe and task poll runs as a command whose answer is a message, so the screen stays
// responsive while Docker, HAProxy or InfluxDB are slow or down, and says so.
package tui

import (
	"context"
	"fmt"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/fridaymorning/fridaymorning/release"
)

// requestTimeout bounds the delivery of one command to the release.
const requestTimeout = 10 * time.Second

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

// EventMsg carries one release event into the cockpit.
type EventMsg release.Event

// ErrMsg reports that the event source failed (watch mode: Swarm unreachable); the screen says so.
type ErrMsg struct{ Err error }

type (
	tickMsg  time.Time
	probeMsg struct {
		name string
		took time.Duration
		err  error
	}
	tasksMsg struct {
		canary, stable string
		err            error
	}
	sentMsg struct {
		cmd release.Command
		err error
	}
	probeTick struct{}
	tasksTick struct{}
)

// dialog is the overlay asking for confirmation, if any.
type dialog int

const (
	dialogNone dialog = iota
	dialogPromote
	dialogAbort
	dialogQuit
)

// probeState is a dependency's last answer.
type probeState struct {
	ok      bool
	took    time.Duration
	err     string
	at      time.Time
	pending bool
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
	m := Model{opts: opts, th: th, width: 80, height: 24, probes: map[string]*probeState{}}
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
	return tea.Batch(tick(), func() tea.Msg { return probeTick{} }, func() tea.Msg { return tasksTick{} })
}

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
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
		return m, tea.Batch(m.runProbes(), tea.Tick(m.opts.ProbeInterval, func(time.Time) tea.Msg { return probeTick{} }))
	case probeMsg:
		if p := m.probes[msg.name]; p != nil {
			*p = probeState{ok: msg.err == nil, took: msg.took, at: m.opts.Now()}
			if msg.err != nil {
				p.err = msg.err.Error()
			}
		}
		return m, nil
	case tasksTick:
		return m, tea.Batch(m.pollTasks(), tea.Tick(m.opts.TaskInterval, func(time.Time) tea.Msg { return tasksTick{} }))
	case tasksMsg:
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

// runProbes checks every dependency that is not being checked already, each in a command of its own.
func (m Model) runProbes() tea.Cmd {
	var cmds []tea.Cmd
	for _, p := range m.opts.Probes {
		st := m.probes[p.Name]
		if st.pending {
			continue
		}
		st.pending = true
		p := p
		cmds = append(cmds, func() tea.Msg {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			start := time.Now()
			err := p.Run(ctx)
			return probeMsg{name: p.Name, took: time.Since(start), err: err}
		})
	}
	return tea.Batch(cmds...)
}

func (m Model) pollTasks() tea.Cmd {
	if m.opts.Tasks == nil {
		return nil
	}
	tasks := m.opts.Tasks
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c, s, err := tasks(ctx)
		return tasksMsg{canary: c, stable: s, err: err}
	}
}

// send asks the release to carry out cmd, off the UI's goroutine, and notes it on screen.
func (m *Model) send(cmd release.Command, notice string) tea.Cmd {
	m.notice, m.noticeAt = notice, m.opts.Now()
	ctl := m.opts.Controller
	if ctl == nil {
		m.notice = "read-only: this cockpit cannot steer the release"
		return nil
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		return sentMsg{cmd: cmd, err: ctl.Request(ctx, cmd)}
	}
}

// active says whether the release can still be steered.
func (m Model) active() bool { return !m.st.Finished && !m.st.Phase.Done() }

func (m Model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	key := k.String()
	if key == "ctrl+c" && m.dialog != dialogQuit {
		m.dialog = dialogQuit
		if !m.active() {
			return m, tea.Quit
		}
		return m, nil
	}
	switch m.dialog {
	case dialogPromote, dialogAbort:
		switch key {
		case "y", "Y", "enter":
			cmd, what := release.CommandPromote, "promotion requested"
			if m.dialog == dialogAbort {
				cmd, what = release.CommandAbort, "abort requested: traffic goes back to stable"
			}
			m.dialog = dialogNone
			return m, m.send(cmd, what)
		case "n", "N", "esc", "q":
			m.dialog = dialogNone
		}
		return m, nil
	case dialogQuit:
		switch key {
		case "l", "L":
			m.quit = QuitLeave
			return m, tea.Quit
		case "p", "P":
			m.quit = QuitPause
			return m, tea.Sequence(m.send(release.CommandPause, "pausing"), tea.Quit)
		case "a", "A":
			m.quit = QuitAbort
			return m, tea.Sequence(m.send(release.CommandAbort, "aborting"), tea.Quit)
		case "esc", "n", "N", "c", "C":
			m.dialog = dialogNone
		case "ctrl+c":
			// A second interrupt leaves the release running, as the first choice does.
			m.quit = QuitLeave
			return m, tea.Quit
		}
		return m, nil
	}
	if m.help {
		m.help = false
		if key == "?" || key == "esc" || key == "q" {
			return m, nil
		}
	}
	if m.explain && (key == "esc" || key == "enter") {
		m.explain = false
		return m, nil
	}
	switch key {
	case "?", "h":
		m.help = true
	case "q":
		if !m.active() {
			return m, tea.Quit
		}
		m.dialog = dialogQuit
	case "p":
		if m.active() {
			m.dialog = dialogPromote
		}
	case "a":
		if m.active() {
			m.dialog = dialogAbort
		}
	case " ":
		if m.active() && m.st.Phase == release.PhaseBaking {
			if m.st.Paused {
				return m, m.send(release.CommandContinue, "continuing the bake")
			}
			return m, m.send(release.CommandPause, "pausing the bake")
		}
	case "n":
		if m.active() && m.st.Phase == release.PhaseBaking {
			return m, m.send(release.CommandSkip, "skipping the rest of the bake")
		}
	case "+", "=":
		if m.active() && m.st.Phase == release.PhaseBaking {
			return m, m.send(release.CommandNudgeUp, "nudging the canary up")
		}
	case "-", "_":
		if m.active() && m.st.Phase == release.PhaseBaking {
			return m, m.send(release.CommandNudgeDown, "nudging the canary down")
		}
	case "up", "k":
		m.selected = max(m.selected-1, 0)
	case "down", "j":
		m.selected = min(m.selected+1, len(m.rows())-1)
	case "enter":
		m.explain = true
	case "esc":
		m.explain = false
	}
	return m, nil
}
