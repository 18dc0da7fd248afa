//go:build !glmkit_testhooks

package testhooks

const on = false

// Crash does nothing in a build without the hooks.
func Crash(point string, at ...int) {}

// CommitDelay does nothing in a build without the hooks.
func CommitDelay() {}
