package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommand(t *testing.T) {
	prog := filepath.Base(os.Args[0])
	for _, tc := range []struct {
		args []string
		drop []string
		add  string
		want string
	}{
		{[]string{"build", "--input", "a b.txt", "--out", "o", "--force"}, []string{"force"}, "resume", prog + " build --input 'a b.txt' --out o --resume"},
		{[]string{"build", "-force=true", "--resume"}, []string{"force"}, "resume", prog + " build --resume"},
		{[]string{"build", "--resume=false", "--input", "it's"}, nil, "resume", prog + ` build --input 'it'\''s' --resume`},
		{[]string{"merge", "d"}, nil, "", prog + " merge d"},
	} {
		if got := Command(tc.args, tc.drop, tc.add); got != tc.want {
			t.Errorf("Command(%q) = %s, want %s", tc.args, got, tc.want)
		}
	}
}

// A panic is an internal error without a stack trace; usage errors exit 2.
func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		run  func(context.Context, []string, io.Writer, io.Writer) error
		code int
		want string
	}{
		{func(context.Context, []string, io.Writer, io.Writer) error { panic("boom") }, 1, "internal error: boom"},
		{func(context.Context, []string, io.Writer, io.Writer) error { return ErrUsage }, 2, "usage"},
		{func(context.Context, []string, io.Writer, io.Writer) error { return errors.New("x.txt: bad") }, 1, "x.txt: bad"},
		{func(context.Context, []string, io.Writer, io.Writer) error { return nil }, 0, ""},
	} {
		var stderr bytes.Buffer
		code := main("tool", nil, io.Discard, &stderr, tc.run)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) || strings.Contains(stderr.String(), "goroutine") {
			t.Errorf("exit %d (want %d), stderr %q (want %q)", code, tc.code, stderr.String(), tc.want)
		}
	}
}
