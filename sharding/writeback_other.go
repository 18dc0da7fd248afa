//go:build !linux

package sharding

import "os"

func startWriteback(*os.File, int64, int64) {}
