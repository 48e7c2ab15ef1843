package headless

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJUnitReport(t *testing.T) {
	j := &junit{}
	for _, ev := range reportEvents() {
		j.Event(ev)
	}
	path := filepath.Join(t.TempDir(), "report.xml")
	if err := j.write(path); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	var rep junitSuites
	if err := xml.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
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
