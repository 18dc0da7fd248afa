//go:build unix

package glmtest

import "syscall"

// Mkfifo makes a named pipe at path, for the tests of inputs and shards
// that are not regular files.
func Mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }
