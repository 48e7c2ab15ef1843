package headless

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/fridaymorning/fridaymorning/release"
)

// sections wraps text output in GitLab CI's collapsible sections: one per step, and one each for
// starting, promoting and aborting.
// https://docs.gitlab.com/ci/jobs/job_logs/#custom-collapsible-sections
type sections struct {
	mu   sync.Mutex
	w    io.Writer
	next eventWriter
	open string
}

// sectionFor names the section an event belongs to and gives its header.
func sectionFor(ev release.Event) (name, header string) {
	switch ev.Phase {
	case release.PhasePreflight, release.PhaseStarting:
		return "fridaymorning_start", "fridaymorning: preflight and canary start"
	case release.PhaseBaking:
		if ev.Step > 0 {
			share := ""
			if ev.Step <= len(ev.Plan) {
				share = fmt.Sprintf(" (%s%%)", strings.TrimSuffix(pct(ev.Plan[ev.Step-1]), "%"))
			}
			return fmt.Sprintf("fridaymorning_step_%d", ev.Step), fmt.Sprintf("fridaymorning: step %d of %d%s", ev.Step, ev.Steps, share)
		}
	case release.PhasePromoting, release.PhaseStandby:
		return "fridaymorning_promote", "fridaymorning: promotion"
	case release.PhaseAborting, release.PhaseRollingBack:
		return "fridaymorning_abort", "fridaymorning: " + strings.TrimSuffix(string(ev.Phase), "ing") + "ing back to stable"
	}
	return "", ""
}

// Event closes the open section if ev belongs to another one, opens that one, and prints ev in it.
func (s *sections) Event(ev release.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, header := sectionFor(ev)
	if ev.Kind == release.KindFinished {
		name = ""
	}
	if name != s.open {
		now := time.Now().Unix()
		if s.open != "" {
			fmt.Fprintf(s.w, "\x1b[0Ksection_end:%d:%s\r\x1b[0K\n", now, s.open)
		}
		if name != "" {
			fmt.Fprintf(s.w, "\x1b[0Ksection_start:%d:%s[collapsed=false]\r\x1b[0K%s\n", now, name, header)
		}
		s.open = name
	}
	s.next.Event(ev)
}
