// Package sysmem says how much memory this machine lends a process: its
// memory, or its cgroup's limit where that is lower. The trainer's CPU
// backend and the loader check their allocations against it, so a batch
// too large for the machine is an error and not the Go runtime's fatal
// out-of-memory crash or the kernel's OOM kill.
package sysmem

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Total is the machine's memory (/proc/meminfo's MemTotal), or its
// cgroup's limit (cgroup v2 memory.max) where that is lower; 0 where
// neither is known (not Linux). where says which, for errors.
func Total() (bound int64, where string) {
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range bytes.Lines(b) {
			f := strings.Fields(string(line))
			if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb > 0 {
					bound, where = kb<<10, "this machine's memory"
				}
			}
		}
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (bound == 0 || n < bound) {
			bound, where = n, "this cgroup's memory.max"
		}
	}
	return bound, where
}
