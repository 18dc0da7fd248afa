//go:build !linux && !darwin

package glmtest

import "os"

// PeakRSS is the peak resident memory of a process that has exited; this
// system's is not read (ok is false), and the tests that need it skip.
func PeakRSS(ps *os.ProcessState) (bytes int64, ok bool) { return 0, false }
