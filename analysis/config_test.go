package analysis

import (
	"strings"
	"testing"
)

func TestThresholdsValidate(t *testing.T) {
	limit := 1.0
	ok := CustomMetric{Name: "bytes_out", Query: "SELECT 1", Max: &limit}
	tests := []struct {
		name string
		th   Thresholds
		want string // "" for valid
	}{
		{"defaults", DefaultThresholds(), ""},
		{"zero value", Thresholds{}, ""},
		{"custom metric", Thresholds{Custom: []CustomMetric{ok}}, ""},
		{"confidence too low", Thresholds{Confidence: 0.5}, "analysis.confidence 0.5: want a number between 0.5 and 1"},
		{"confidence of 1", Thresholds{Confidence: 1}, "analysis.confidence 1"},
		{"confidence in percent", Thresholds{Confidence: 98}, "analysis.confidence 98"},
		{"custom without a name", Thresholds{Custom: []CustomMetric{ok, {Query: "q", Max: &limit}}}, "analysis.custom[1]: a name without spaces"},
		{"custom name with a space", Thresholds{Custom: []CustomMetric{{Name: "bytes out", Query: "q", Max: &limit}}}, "analysis.custom[0]"},
		{"custom name twice", Thresholds{Custom: []CustomMetric{ok, ok}}, `the name "bytes_out" is used twice`},
		{"custom without a query", Thresholds{Custom: []CustomMetric{{Name: "x", Query: " ", Max: &limit}}}, "analysis.custom x: no query"},
		{"PromQL custom without a query", Thresholds{Custom: []CustomMetric{{Name: "x", Source: SourcePrometheus, Max: &limit}}}, "no query: give a query template in PromQL"},
		{"custom without a limit", Thresholds{Custom: []CustomMetric{{Name: "x", Query: "q"}}}, "analysis.custom x: no limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.th.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("valid thresholds refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
