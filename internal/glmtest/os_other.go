//go:build !unix

package glmtest

import (
	"errors"
	"runtime"
)

// Mkfifo makes a named pipe at path; this system has none (the tests that
// need one skip with this error).
func Mkfifo(path string) error { return errors.New("no named pipes on " + runtime.GOOS) }
