package buildinfo

import (
	"strings"
	"testing"
)

func TestStampedValuesWin(t *testing.T) {
	old := [3]string{version, commit, date}
	t.Cleanup(func() { version, commit, date = old[0], old[1], old[2] })
	version, commit, date = "v9.8.7", "0123456789abcdef0123", "2026-12-01T09:00:00Z"
	got := Get().String()
	for _, want := range []string{"fridaymorning v9.8.7", "commit 0123456789ab", "built 2026-12-01T09:00:00Z", "go1."} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
}

func TestUnstampedIsDev(t *testing.T) {
	old := [3]string{version, commit, date}
	t.Cleanup(func() { version, commit, date = old[0], old[1], old[2] })
	version, commit, date = "", "", ""
	if in := Get(); in.Version != "dev" && !strings.HasPrefix(in.Version, "v") {
		t.Errorf("version %q: want dev or a module version", in.Version)
	}
}
