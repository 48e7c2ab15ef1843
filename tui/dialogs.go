package tui

import (
	"fmt"

	"github.com/charmbracelet/bubbles/key"

	"github.com/fridaymorning/fridaymorning/release"
)

// dialogBox is the confirmation asked before promoting, aborting or leaving a release that is not over.
func (m Model) dialogBox(w int) string {
	t, k := m.th, m.keys
	hint := func(b key.Binding) string { return m.hints.ShortHelpView([]key.Binding{b}) }
	yes := func(verb string) string {
		b := k.Yes.Binding
		b.SetHelp(b.Help().Key, verb)
		return hint(b) + "   " + hint(k.No.Binding)
	}
	var text string
	switch m.dialog {
	case dialogPromote:
		text = t.Bold.Render("Promote now?") + "\n\nThe remaining steps are skipped: stable takes " + shortImage(m.st.Image) +
			"\nand the canary is removed.\n\n" + yes("promote")
	case dialogAbort:
		text = m.abortText() + yes("abort")
	case dialogNudge:
		plan := m.st.Plan
		text = t.Bold.Render("Nudge past the plan?") + fmt.Sprintf("\n\nThe canary would get %s%% of requests, more than the\nlast planned step (%s%%); the step's bake starts again.\n\n",
			release.FormatPercent(min(m.st.Requested+release.NudgeStep, 100)), release.FormatPercent(plan[len(plan)-1])) + yes("nudge")
	case dialogQuit:
		text = t.Bold.Render("Leave the cockpit?") + "\n\nThe release is not over. What should happen to it?\n\n" +
			hint(k.Leave.Binding) + "\n" + hint(k.PauseLeave.Binding) + "\n" + hint(k.AbortLeave.Binding) + "\n" + hint(k.Stay.Binding)
	}
	return t.Dialog.Width(min(60, w-4)).Render(text)
}

// abortText says what `a` does in the phase the release is in: an abort before promotion, the end of the
// warm standby once promoted, nothing during a promotion.
func (m Model) abortText() string {
	t := m.th
	switch m.st.Phase {
	case release.PhaseStandby:
		return t.Bold.Render("End the standby now?") + "\n\nThe release is promoted: stable keeps running " + shortImage(m.st.Image) +
			".\nThe standby of " + shortImage(m.st.StableImage) + " is removed, and a rollback to it\nis no longer possible.\n\n"
	case release.PhasePromoting:
		return t.Bold.Render("Abort during the promotion?") + "\n\nThe promotion is under way: the abort is not carried\nout, since stable may already be moving to " +
			shortImage(m.st.Image) + ".\nThe promotion finishes, and a standby, if any, stays.\n\n"
	case release.PhaseRollingBack:
		return t.Bold.Render("Abort the rollback?") + "\n\nA rollback is the way back already: it is finished,\nnot aborted.\n\n"
	}
	return t.Bold.Render("Abort the release?") + "\n\nAll traffic goes back to stable at once and the canary\nis removed; stable is untouched.\n\n"
}
