//go:build glmkit_testhooks

package testhooks

import (
	"os"
	"time"
)

const on = true

// Crash kills the process, as SIGKILL would from outside, when
// GLMKIT_TEST_CRASH is point:at[0]/at[1]/… ("shard-committed:0/3",
// "checkpoint-written:4").
func Crash(point string, at ...int) {
	if v := os.Getenv("GLMKIT_TEST_CRASH"); v != "" && v == pointName(point, at) {
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			p.Kill()
		}
		select {}
	}
}

// CommitDelay sleeps for GLMKIT_TEST_COMMIT_DELAY (a time.Duration) after
// a commit, so that a test can stop a command between two of them.
func CommitDelay() {
	if d, err := time.ParseDuration(os.Getenv("GLMKIT_TEST_COMMIT_DELAY")); err == nil && d > 0 {
		time.Sleep(d)
	}
}
