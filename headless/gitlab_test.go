package headless

import (
	"bytes"
	"strings"
	"testing"
)

func TestGitLabSections(t *testing.T) {
	var buf bytes.Buffer
	out, err := New(&buf, Options{Sections: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range reportEvents() {
		out.Event(ev)
	}
	got := buf.String()
	var names []string
	for _, l := range strings.Split(got, "\n") {
		if i := strings.Index(l, "section_start:"); i >= 0 {
			f := strings.SplitN(l[i:], ":", 3)
			names = append(names, strings.SplitN(f[2], "[", 2)[0])
		}
	}
	if strings.Join(names, " ") != "fridaymorning_start fridaymorning_step_1 fridaymorning_step_2 fridaymorning_abort" {
		t.Errorf("sections %v:\n%s", names, got)
	}
	if strings.Count(got, "section_start:") != strings.Count(got, "section_end:") {
		t.Errorf("unbalanced sections:\n%s", got)
	}
	if !strings.Contains(got, "fridaymorning: step 2 of 2 (50%)") {
		t.Errorf("no step header:\n%s", got)
	}
}
