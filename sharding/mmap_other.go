//go:build !unix

package sharding

import (
	"fmt"
	"io"
	"os"
)

// mapFile reads f into memory where memory maps are not available: rows
// then alias that copy instead of a mapping.
func mapFile(f *os.File, size int64) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("empty file (%d bytes)", size)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, err
	}
	return data, nil
}

func unmapFile([]byte) error { return nil }
