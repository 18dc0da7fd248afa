//go:build unix

package sharding

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps the size bytes of f (size > 0) read-only. The mapping stays
// valid after f is closed; the caller must unmapFile it.
func mapFile(f *os.File, size int) ([]byte, error) {
	data, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	return data, nil
}

func unmapFile(data []byte) error {
	if data == nil {
		return nil
	}
	return unix.Munmap(data)
}
