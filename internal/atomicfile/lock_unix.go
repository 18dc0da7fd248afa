//go:build unix

package atomicfile

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes (or, with on false, drops) an exclusive flock on f without
// waiting.
func lockFile(f *os.File, on bool) error {
	how := syscall.LOCK_UN
	if on {
		how = syscall.LOCK_EX | syscall.LOCK_NB
	}
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// processAlive reports whether a process with this id runs on this host.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

var errNoLocks = errors.New("no file locks") // never returned here
