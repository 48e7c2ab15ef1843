package release

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestWarmStandby(t *testing.T) {
	promoted := "shift 0\ncreate app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 50\nanalyze 50\n" +
		"scale app-canary\nready app-canary\nup canary\nshift 100\nupdate app app:v2\nready app\nup stable\nshift 0\n" +
		"update app-canary app:v1\nready app-canary\nup canary\n"
	t.Run("kept until its time is up, then removed", func(t *testing.T) {
		w := &world{}
		cfg := testConfig()
		cfg.Standby = 50 * time.Millisecond
		out, err, events := run(t, context.Background(), cfg, w)
		if out != OutcomePromoted || err != nil {
			t.Fatalf("%s %v", out, err)
		}
		if got, want := w.log(), promoted+"drain canary\nremove app-canary"; got != want {
			t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
		}
		sawStandby := false
		for _, ev := range events {
			sawStandby = sawStandby || ev.Phase == PhaseStandby
		}
		if !sawStandby {
			t.Error("no event in phase standby")
		}
	})
	t.Run("rollback from another process sends traffic back at once", func(t *testing.T) {
		w := &world{}
		cfg := testConfig()
		cfg.Standby = time.Hour
		go func() {
			for {
				if r := w.stored(t); r != nil && r.Phase == PhaseStandby {
					if _, err := Request(context.Background(), &w.memJournal, "app", CommandRollback); err != nil {
						t.Error(err)
					}
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		out, err, _ := run(t, context.Background(), cfg, w)
		if out != OutcomeRolledBack || err != nil {
			t.Fatalf("%s %v", out, err)
		}
		want := promoted + "shift 100\nupdate app app:v1\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary"
		if got := w.log(); got != want {
			t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
		}
		if r := w.stored(t); r.Phase != PhaseRolledBack || r.Outcome != OutcomeRolledBack || r.Active() {
			t.Fatalf("record %+v", r)
		}
	})
	t.Run("rollback after the process died", func(t *testing.T) {
		w := &world{images: map[string]string{"app": "app:v2"}}
		until := time.Now().Add(time.Hour)
		old := time.Now().Add(-time.Hour)
		storeRecord(t, w, Record{ID: "r-dead", Service: "app", StableImage: "app:v1", Image: "app:v2", Canary: "app-canary",
			Steps: []float64{10, 50}, Phase: PhaseStandby, Outcome: OutcomePromoted, StandbyUntil: &until,
			StartedBy: "alice", StartedAt: old, UpdatedAt: old, Owner: "dead-process"})
		out, err := resume(t, w, ResumeRollback, false)
		if out != OutcomeRolledBack || err != nil {
			t.Fatalf("%s %v", out, err)
		}
		if got, want := w.log(), "shift 100\nupdate app app:v1\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary"; got != want {
			t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("an expired standby is removed, not rolled back to", func(t *testing.T) {
		w := &world{images: map[string]string{"app": "app:v2"}}
		until := time.Now().Add(-time.Minute)
		old := time.Now().Add(-time.Hour)
		storeRecord(t, w, Record{ID: "r-dead", Service: "app", StableImage: "app:v1", Image: "app:v2", Canary: "app-canary",
			Steps: []float64{10, 50}, Phase: PhaseStandby, Outcome: OutcomePromoted, StandbyUntil: &until,
			StartedBy: "alice", StartedAt: old, UpdatedAt: old, Owner: "dead-process"})
		out, err := resume(t, w, ResumeRollback, false)
		if out != OutcomePromoted || err != nil {
			t.Fatalf("%s %v", out, err)
		}
		if got, want := w.log(), "drain canary\nremove app-canary"; got != want {
			t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("a new release is refused while the standby runs", func(t *testing.T) {
		w := &world{}
		until := time.Now().Add(time.Hour)
		storeRecord(t, w, Record{ID: "r-prev", Service: "app", Phase: PhaseStandby, StandbyUntil: &until, Owner: "x", StartedAt: time.Now(), UpdatedAt: time.Now()})
		if out, err, _ := run(t, context.Background(), testConfig(), w); out != OutcomeFailed || err == nil || !strings.Contains(err.Error(), "r-prev") {
			t.Fatalf("%s %v", out, err)
		}
	})
}
