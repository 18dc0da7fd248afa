//go:build linux

package dynlib

import (
	"os"
	"slices"
	"testing"
)

// Bind sets the tagged function fields from a real library (the C
// library every Linux process has), leaves an optional missing one nil,
// and binds nothing when a required one is missing.
func TestBind(t *testing.T) {
	h, err := Open("libc.so.6")
	if err != nil {
		t.Skipf("no libc.so.6 to bind against: %v", err)
	}
	var fns struct {
		getpid func() int32        `sym:"getpid"`
		absent func() int32        `sym:"glmkit_no_such_symbol,optional"`
		strlen func(string) uint64 `sym:"strlen"`
		state  int
	}
	if missing := Bind(h, &fns); missing != nil {
		t.Fatalf("missing %v", missing)
	}
	if got := fns.getpid(); int(got) != os.Getpid() {
		t.Errorf("getpid() = %d, want %d", got, os.Getpid())
	}
	if n := fns.strlen("glmkit"); n != 6 {
		t.Errorf(`strlen("glmkit") = %d, want 6`, n)
	}
	if fns.absent != nil {
		t.Error("a missing optional symbol was bound")
	}

	var partial struct {
		getpid func() int32 `sym:"getpid"`
		a      func()       `sym:"glmkit_no_such_a"`
		b      func()       `sym:"glmkit_no_such_b"`
	}
	if got, want := Bind(h, &partial), []string{"glmkit_no_such_a", "glmkit_no_such_b"}; !slices.Equal(got, want) {
		t.Errorf("missing = %v, want %v", got, want)
	}
	if partial.getpid != nil {
		t.Error("a struct with a missing required symbol was bound in part")
	}
}

func TestBindNotAStructPointer(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Bind of a struct value did not panic")
		}
	}()
	Bind(0, struct{ f func() }{})
}
