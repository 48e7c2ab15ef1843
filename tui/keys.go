package tui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/fridaymorning/fridaymorning/release"
)

// binding is a key binding with the two texts help shows of it: Help() is the footer's hint ("p promote"),
// full the line of the help overlay ("p  promote now (asks first)"). A binding with an empty text has no
// entry there; a pair such as + and - has one entry, on its first binding.
type binding struct {
	key.Binding
	full key.Help
}

// bind makes a binding of keys with its footer hint and its help overlay line.
func bind(keys []string, hint, full key.Help) binding {
	return binding{Binding: key.NewBinding(key.WithKeys(keys...), key.WithHelp(hint.Key, hint.Desc)), full: full}
}

// keyMap is every key the cockpit knows: the single place that says which key does what, from which
// the footer and the help overlay are drawn.
type keyMap struct {
	// On the main screen.
	Promote, Abort, Pause, Next, NudgeUp, NudgeDown, Up, Down, Explain, Close, Help, Quit binding
	// Interrupt (ctrl+c) asks what to do with the release; a second one leaves it running.
	Interrupt binding
	// CloseHelp and CloseExplain close their overlay without doing anything else; any other key closes
	// the help and does what it does.
	CloseHelp, CloseExplain binding
	// In the promote and abort dialogs.
	Yes, No binding
	// In the dialog on leaving.
	Leave, PauseLeave, AbortLeave, Stay binding
}

// defaultKeys is the cockpit's key map.
func defaultKeys() keyMap {
	none := key.Help{}
	h := func(k, desc string) key.Help { return key.Help{Key: k, Desc: desc} }
	return keyMap{
		Promote:   bind([]string{"p"}, h("p", "promote"), h("p", "promote now (asks first)")),
		Abort:     bind([]string{"a"}, h("a", "abort"), h("a", "abort: traffic back to stable (asks first)")),
		Pause:     bind([]string{" "}, h("space", "pause"), h("space", "pause / continue the bake's clock")),
		Next:      bind([]string{"n"}, h("n", "next"), h("n", "next: judge the step now")),
		NudgeUp:   bind([]string{"+", "="}, h("+/-", "share"), h("+ / -", "nudge the canary's share by 5 points")),
		NudgeDown: bind([]string{"-", "_"}, none, none),
		Up:        bind([]string{"up", "k"}, h("↑↓ enter", "explain"), h("↑ ↓", "select a metric")),
		Down:      bind([]string{"down", "j"}, none, none),
		Explain:   bind([]string{"enter"}, h("enter", "explain"), h("enter", "explain the selected metric's verdict")),
		Close:     bind([]string{"esc"}, none, none),
		Help:      bind([]string{"?", "h"}, h("?", "help"), h("?", "this help")),
		Quit:      bind([]string{"q"}, h("q", "quit"), h("q", "quit: leave running, pause or abort")),
		Interrupt: bind([]string{"ctrl+c"}, none, none),

		CloseHelp:    bind([]string{"?", "esc", "q"}, none, none),
		CloseExplain: bind([]string{"esc", "enter"}, none, none),

		Yes: bind([]string{"y", "Y", "enter"}, h("y", "confirm"), none),
		No:  bind([]string{"n", "N", "esc", "q"}, h("n", "cancel"), none),

		Leave:      bind([]string{"l", "L"}, h("l", "leave it running (watch or resume it later)"), none),
		PauseLeave: bind([]string{"p", "P"}, h("p", "pause it, then leave"), none),
		AbortLeave: bind([]string{"a", "A"}, h("a", "abort it, then leave"), none),
		Stay:       bind([]string{"esc", "n", "N", "c", "C"}, h("esc", "stay"), none),
	}
}

// steering is what the footer offers while the release can be steered, in its order; explain is left
// out on narrow screens.
func (k keyMap) steering(paused, explain bool) []key.Binding {
	pause := k.Pause.Binding
	if paused {
		pause.SetHelp(pause.Help().Key, "continue")
	}
	out := []key.Binding{k.Promote.Binding, k.Abort.Binding, pause, k.Next.Binding, k.NudgeUp.Binding}
	if explain {
		out = append(out, k.Up.Binding)
	}
	return append(out, k.Help.Binding, k.Quit.Binding)
}

// ended is what the footer offers once the release is over.
func (k keyMap) ended() []key.Binding {
	return []key.Binding{k.Quit.Binding, k.Help.Binding, k.Explain.Binding}
}

// full is every binding of the main screen that the help overlay lists, in its order.
func (k keyMap) full() []binding {
	var out []binding
	for _, b := range []binding{k.Promote, k.Abort, k.Pause, k.Next, k.NudgeUp, k.NudgeDown, k.Up, k.Down, k.Explain, k.Close, k.Help, k.Quit} {
		if b.full.Key != "" {
			out = append(out, b)
		}
	}
	return out
}

// is says whether the key pressed is one of b's.
func is(msg tea.KeyMsg, b binding) bool { return key.Matches(msg, b.Binding) }

// key handles a key: dialogs first, then the overlays, then the main screen.
func (m Model) key(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.keys
	if is(msg, k.Interrupt) && m.dialog != dialogQuit {
		m.dialog = dialogQuit
		if !m.active() {
			return m, tea.Quit
		}
		return m, nil
	}
	switch m.dialog {
	case dialogPromote, dialogAbort, dialogNudge:
		switch {
		case is(msg, k.Yes):
			cmd, what := release.CommandPromote, "promotion requested"
			switch m.dialog {
			case dialogAbort:
				cmd, what = release.CommandAbort, "abort requested: traffic goes back to stable"
				if m.st.Phase == release.PhaseStandby {
					what = "abort requested: the standby is removed"
				}
			case dialogNudge:
				cmd, what = release.CommandNudgeUpPastPlan, "nudging the canary up, past the plan"
			}
			m.dialog = dialogNone
			return m, m.request(cmd, what)
		case is(msg, k.No):
			m.dialog = dialogNone
		}
		return m, nil
	case dialogQuit:
		switch {
		case is(msg, k.Leave):
			m.quit = QuitLeave
			return m, tea.Quit
		case is(msg, k.PauseLeave):
			m.quit = QuitPause
			return m, tea.Sequence(m.request(release.CommandPause, "pausing"), tea.Quit)
		case is(msg, k.AbortLeave):
			m.quit = QuitAbort
			return m, tea.Sequence(m.request(release.CommandAbort, "aborting"), tea.Quit)
		case is(msg, k.Stay):
			m.dialog = dialogNone
		case is(msg, k.Interrupt):
			// A second interrupt leaves the release running, as the first choice does.
			m.quit = QuitLeave
			return m, tea.Quit
		}
		return m, nil
	}
	if m.help {
		m.help = false
		if is(msg, k.CloseHelp) {
			return m, nil
		}
	}
	if m.explain && is(msg, k.CloseExplain) {
		m.explain = false
		return m, nil
	}
	baking := m.active() && m.st.Phase == release.PhaseBaking
	switch {
	case is(msg, k.Help):
		m.help = true
	case is(msg, k.Quit):
		if !m.active() {
			return m, tea.Quit
		}
		m.dialog = dialogQuit
	case is(msg, k.Promote):
		if m.active() {
			m.dialog = dialogPromote
		}
	case is(msg, k.Abort):
		if m.active() {
			m.dialog = dialogAbort
		}
	case is(msg, k.Pause):
		if baking {
			if m.st.Paused {
				return m, m.request(release.CommandContinue, "continuing the bake")
			}
			return m, m.request(release.CommandPause, "pausing the bake")
		}
	case is(msg, k.Next):
		if baking {
			return m, m.request(release.CommandSkip, "skipping the rest of the bake")
		}
	case is(msg, k.NudgeUp):
		switch {
		case baking && m.pastPlan():
			m.dialog = dialogNudge
		case baking:
			return m, m.request(release.CommandNudgeUp, "nudging the canary up")
		}
	case is(msg, k.NudgeDown):
		if baking {
			return m, m.request(release.CommandNudgeDown, "nudging the canary down")
		}
	case is(msg, k.Up):
		m.selected = max(m.selected-1, 0)
	case is(msg, k.Down):
		m.selected = min(m.selected+1, len(m.rows())-1)
	case is(msg, k.Explain):
		m.explain = true
	case is(msg, k.Close):
		m.explain = false
	}
	return m, nil
}

// pastPlan reports whether a nudge up would take the canary beyond the last planned step's share.
func (m Model) pastPlan() bool {
	plan := m.st.Plan
	return len(plan) > 0 && m.st.Requested+release.NudgeStep > plan[len(plan)-1]
}
