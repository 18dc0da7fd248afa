package testhooks

import (
	"testing"
	"time"
)

// Without the tag (every build users run), the hooks do nothing, whatever
// the environment says.
func TestHooksOffByDefault(t *testing.T) {
	if On() {
		t.Skip("built with -tags " + Tag)
	}
	t.Setenv("GLMKIT_TEST_CRASH", "checkpoint-written:4")
	t.Setenv("GLMKIT_TEST_COMMIT_DELAY", "1h")
	start := time.Now()
	Crash("checkpoint-written", 4) // would kill this process
	CommitDelay()                  // would sleep an hour
	if d := time.Since(start); d > time.Minute {
		t.Errorf("CommitDelay slept %v", d)
	}
	if got := pointName("shard-committed", []int{0, 3}); got != "shard-committed:0/3" {
		t.Errorf("pointName = %q", got)
	}
}
