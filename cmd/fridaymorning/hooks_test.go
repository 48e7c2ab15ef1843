package main

import (
	"strings"
	"testing"
)

// TestHooksConfig: notify:, gates: and prometheus: are read from fridaymorning.yaml, URLs with secrets
// come from the environment or files, and what is wrong is said with the key to fix, never the secret.
func TestHooksConfig(t *testing.T) {
	t.Setenv("TEAM_CHAT_URL", "https://chat.example/hooks/s3cret-token")
	good := func() *fileConfig {
		fc := &fileConfig{}
		fc.Notify = []notifyEntry{{Name: "team", Kind: "slack", URLEnv: "TEAM_CHAT_URL", Events: []string{"aborted"}}}
		fc.Gates.PreRollout = []gateEntry{{Name: "smoke", Command: []string{"./smoke.sh"}}}
		fc.Gates.ConfirmPromotion = []gateEntry{{Name: "board", URLEnv: "TEAM_CHAT_URL"}}
		return fc
	}
	fc := good()
	n, err := notifier(fc, nil)
	if err != nil || n == nil {
		t.Fatalf("notifier: %v", err)
	}
	gs, err := gates(fc)
	if err != nil || len(gs) != 2 || gs[0].Point != "pre_rollout" || gs[1].Point != "confirm_promotion" {
		t.Fatalf("gates %+v: %v", gs, err)
	}
	for _, c := range []struct {
		name string
		mod  func(*fileConfig)
		want string
		do   func(*fileConfig) error
	}{
		{"unset variable", func(fc *fileConfig) { fc.Notify[0].URLEnv = "NOT_SET_ANYWHERE" }, "NOT_SET_ANYWHERE is not set", nil},
		{"no URL", func(fc *fileConfig) { fc.Notify[0].URLEnv = "" }, "notify[0] (team) has no URL", nil},
		{"bad kind", func(fc *fileConfig) { fc.Notify[0].Kind = "email" }, `kind "email"`, nil},
		{"gate with both", func(fc *fileConfig) { fc.Gates.PreRollout[0].URLEnv = "TEAM_CHAT_URL" }, "gates.pre_rollout[0] (smoke) has both", func(fc *fileConfig) error { _, err := gates(fc); return err }},
		{"gate with neither", func(fc *fileConfig) { fc.Gates.PreRollout[0].Command = nil }, "neither url_env, url_file nor command", func(fc *fileConfig) error { _, err := gates(fc); return err }},
		{"prometheus check without prometheus", func(fc *fileConfig) {
			fc.Analysis.Custom = []customEntry{{Name: "x", Source: "prometheus", Query: "1"}}
		}, "prometheus.url is not set", func(fc *fileConfig) error { _, err := prometheus(fc); return err }},
	} {
		fc := good()
		c.mod(fc)
		do := c.do
		if do == nil {
			do = func(fc *fileConfig) error { _, err := notifier(fc, nil); return err }
		}
		err := do(fc)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
