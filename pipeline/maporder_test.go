package pipeline

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// forEach returns the error of the first failing item, whichever fails
// first in time: every item before it runs to its end, the items after it
// are cancelled or never start.
func TestForEachFirstError(t *testing.T) {
	for trial := range 50 {
		n := 3 + trial%17
		fail := map[int]bool{n - 1: true, 1 + trial%(n-1): true}
		var ran [32]atomic.Bool
		err := forEach(context.Background(), n, 1+trial%6, func(ctx context.Context, i int) error {
			// Later items fail sooner, to race the earlier ones.
			select {
			case <-time.After(time.Duration(n-i) * 200 * time.Microsecond):
			case <-ctx.Done():
				return ctx.Err()
			}
			ran[i].Store(true)
			if fail[i] {
				return fmt.Errorf("item %d", i)
			}
			return nil
		})
		first := 1 + trial%(n-1)
		if err == nil || err.Error() != fmt.Sprintf("item %d", first) {
			t.Fatalf("trial %d: %v; want item %d's error", trial, err, first)
		}
		for i := range first {
			if !ran[i].Load() {
				t.Fatalf("trial %d: item %d, before the first failure, did not run to its end", trial, i)
			}
		}
	}
	if err := forEach(context.Background(), 0, 4, nil); err != nil {
		t.Fatal(err)
	}
}
