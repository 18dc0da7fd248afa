//go:build linux || darwin

package glmtest

import (
	"os"
	"syscall"
)

// PeakRSS is the peak resident memory of a process that has exited, in
// bytes; ok is false where the system does not say.
func PeakRSS(ps *os.ProcessState) (bytes int64, ok bool) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, false
	}
	return int64(ru.Maxrss) * maxrssUnit, true
}
