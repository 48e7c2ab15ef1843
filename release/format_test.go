package release

import "testing"

func TestFormatWeights(t *testing.T) {
	if got := FormatWeights(map[string]int{"stable1": 230, "canary1": 26}); got != "canary1:26,stable1:230" {
		t.Fatalf("got %q", got)
	}
}
