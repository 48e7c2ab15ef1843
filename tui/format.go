package tui

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// How numbers, durations and images read on the screen, shared by its parts.

// num renders v with at most two decimals and no trailing zeros; "n/a" for NaN and infinities.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

// signed is num with a sign and a unit: "+1ms", "-0.11pt".
func signed(v float64, unit string) string {
	if v > 0 {
		return "+" + num(v) + unit
	}
	return num(v) + unit
}

// msStr renders a duration in milliseconds: "12.5ms".
func msStr(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64) + "ms"
}

// clock renders a duration as a clock does, to the second: "0:41", "1:02:03"; negative ones as 0:00.
func clock(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	if d >= time.Hour {
		return fmt.Sprintf("%d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

// shortImage drops a registry and repository path: "registry.example.com/shop/api:v2" → "api:v2".
func shortImage(img string) string {
	if i := strings.LastIndex(img, "/"); i >= 0 {
		img = img[i+1:]
	}
	if i := strings.Index(img, "@sha256:"); i >= 0 {
		img = img[:i+15]
	}
	return img
}

// orDash is s, or "—" when s is empty.
func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
