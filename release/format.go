package release

import (
	"fmt"
	"sort"
	"strings"
)

// FormatWeights renders weights as "name:w,name:w" in name order.
func FormatWeights(w map[string]int) string {
	names := make([]string, 0, len(w))
	for n := range w {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s:%d", n, w[n])
	}
	return b.String()
}

// FormatSteps renders steps as "10%, 25%, 50%".
func FormatSteps(steps []float64) string {
	s := make([]string, len(steps))
	for i, p := range steps {
		s[i] = FormatPercent(p) + "%"
	}
	return strings.Join(s, ", ")
}

// FormatPercent renders a share without trailing zeros: 10, 12.5, 33.33.
func FormatPercent(p float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", p), "0"), ".")
}
