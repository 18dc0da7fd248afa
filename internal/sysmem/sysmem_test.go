package sysmem

import (
	"os"
	"testing"
)

// On Linux the memory is /proc/meminfo's, or the cgroup's lower limit.
func TestTotal(t *testing.T) {
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		t.Skipf("no /proc/meminfo (%v): Total is 0 here", err)
	}
	n, where := Total()
	if n < 64<<20 || where == "" {
		t.Fatalf("Total = %d bytes (%q); want this machine's memory", n, where)
	}
	t.Logf("%.2f GiB, %s", float64(n)/(1<<30), where)
}
