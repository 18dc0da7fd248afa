//go:build unix

package sharding

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps f read-only. The mapping stays valid after f is closed; the
// caller must unmapFile it. A file of size 0 cannot be mapped.
func mapFile(f *os.File, size int64) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("empty file (%d bytes)", size)
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("file of %d bytes does not fit in the address space", size)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
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
