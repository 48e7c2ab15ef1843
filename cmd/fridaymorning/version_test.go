package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestVersion: `fridaymorning version`, `--version` and `version --output json` say which build this is.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out, errs bytes.Buffer
		if code := Main(args, &out, &errs); code != 0 || !strings.HasPrefix(out.String(), "fridaymorning ") || !strings.Contains(out.String(), "commit ") {
			t.Errorf("%v: exit %d, %q %q", args, code, out.String(), errs.String())
		}
	}
	var out, errs bytes.Buffer
	if code := Main([]string{"version", "--output", "json"}, &out, &errs); code != 0 {
		t.Fatalf("json: exit %d: %s", code, errs.String())
	}
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v["version"] == "" || v["go"] == nil {
		t.Errorf("json %q: %v", out.String(), err)
	}
	if code := Main([]string{"version", "--output", "xml"}, &out, &errs); code != exitUsage {
		t.Errorf("--output xml: exit %d, want %d", code, exitUsage)
	}
}
