//go:build !unix

package sharding

import (
	"io"
	"os"
)

// mapFile reads the size bytes of f (size > 0) into memory where memory
// maps are not available: rows then alias that copy instead of a mapping.
func mapFile(f *os.File, size int) ([]byte, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, err
	}
	return data, nil
}

func unmapFile([]byte) error { return nil }
