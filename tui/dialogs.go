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
		text = t.Bold.Render("Abort the release?") + "\n\nAll traffic goes back to stable at once and the canary\nis removed; stable is untouched.\n\n" +
			yes("abort")
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
