package headless

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fridaymorning/fridaymorning/release"
)

// report writes j's report and reads it back.
func report(t *testing.T, j *junit) junitSuites {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.xml")
	if err := j.write(path); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	var rep junitSuites
	if err := xml.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	return rep
}

func TestJUnitReport(t *testing.T) {
	j := &junit{}
	for _, ev := range reportEvents() {
		j.Event(ev)
	}
	rep := report(t, j)
	if rep.Tests != 3 || rep.Failures != 2 || len(rep.Suites) != 1 {
		t.Fatalf("report %+v", rep)
	}
	c := rep.Suites[0].Cases[1]
	if c.Failure == nil || c.Failure.Message != "canary error rate 50% > 1%" || !strings.Contains(c.Failure.Text, "exact binomial: P = 1e-9") || !strings.Contains(c.Failure.Text, "SELECT 1") {
		t.Errorf("failing case %+v", c)
	}
	if rep.Suites[0].Cases[0].Name != "step 1 of 2: 10% to the canary" {
		t.Errorf("case name %q", rep.Suites[0].Cases[0].Name)
	}
}

// A release from a stack file puts its spec difference in the report, from the preflight event's
// structured Changes.
func TestJUnitReportHasTheSpecDifference(t *testing.T) {
	j := &junit{}
	j.Event(release.Event{Kind: release.KindPreflight, ReleaseID: "r1", Service: "shop_app", Message: "swarm ok"})
	j.Event(release.Event{Kind: release.KindPreflight, ReleaseID: "r1", Service: "shop_app", Message: "stack file ok: 2 change(s) to shop_app",
		Changes: []release.Change{{Field: "env DATABASE_POOL", From: "10", To: "20"}, {Field: "env DEBUG", To: "1"}}})
	rep := report(t, j)
	if rep.Tests != 1 {
		t.Fatalf("%d cases, want 1 (a check without changes adds none)", rep.Tests)
	}
	c := rep.Suites[0].Cases[0]
	if c.Name != "preflight: 2 change(s) to the spec of shop_app" || c.SystemOut != "env DATABASE_POOL: 10 → 20\n+ env DEBUG: 1\n" || c.Failure != nil {
		t.Errorf("case %+v", c)
	}
}
