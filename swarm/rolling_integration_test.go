//go:build integration

package swarm

import (
	"context"
	"testing"
	"time"
)

// TestUpdateWithRollback: Swarm's own rolling update of a version that crashes at start is rolled back
// by Swarm, and UpdateState tells it.
func TestUpdateWithRollback(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	name, _ := newStable(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if state, err := c.UpdateState(ctx, name); err != nil || state != "" {
		t.Fatalf("a service never updated: state %q, %v", state, err)
	}
	if err := c.UpdateWithRollback(ctx, name, imageRepo()+":v2-crash", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	var state string
	for state != "rollback_completed" {
		select {
		case <-ctx.Done():
			t.Fatalf("the update of a crashing version did not roll back: state %q", state)
		case <-time.After(500 * time.Millisecond):
		}
		if state, err = c.UpdateState(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if img, err := c.Image(ctx, name); err != nil || img != imageRepo()+":v1" {
		t.Errorf("after the rollback the service runs %q (%v), want v1", img, err)
	}
	if err := c.UpdateWithRollback(ctx, "fmtest-no-such-service", imageRepo()+":v2", time.Second); err == nil {
		t.Error("an update of a service that does not exist succeeded")
	}
}
