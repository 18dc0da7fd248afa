// Package testhooks is how the process tests of glmprep and glmtrain reach
// inside a running command: built with the tag glmkit_testhooks (Tag),
// Crash kills the process at a named point of a commit, as
// GLMKIT_TEST_CRASH says, and CommitDelay slows each commit by
// GLMKIT_TEST_COMMIT_DELAY, so that a test can kill or interrupt a command
// exactly there. In every other build, the commands users run, both do
// nothing. The process tests build their binaries with the tag (Binary) and
// remove them when their package's tests end (Main).
package testhooks

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// Tag is the build tag that turns the hooks on.
const Tag = "glmkit_testhooks"

// pointName is what GLMKIT_TEST_CRASH names: point:a/b/….
func pointName(point string, at []int) string {
	s := make([]string, len(at))
	for i, n := range at {
		s[i] = fmt.Sprint(n)
	}
	return point + ":" + strings.Join(s, "/")
}

// A Binary is a command built with the hooks on, for the process tests
// of its package: Command builds it the first time, from the current
// directory (a test runs in its package's directory), into a temporary
// directory that Remove deletes.
type Binary struct {
	name string
	once sync.Once
	dir  string
	path string
	err  error
}

// NewBinary returns the Binary of the command name (its file name).
func NewBinary(name string) *Binary { return &Binary{name: name} }

// Path builds the binary, once, and returns its path.
func (b *Binary) Path() (string, error) {
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", b.name+"-testhooks-"); b.err != nil {
			return
		}
		gobin, err := exec.LookPath("go")
		if err != nil {
			gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		b.path = filepath.Join(b.dir, b.name)
		if out, err := exec.Command(gobin, "build", "-tags", Tag, "-o", b.path, ".").CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build -tags %s: %v\n%s", Tag, err, out)
		}
	})
	return b.path, b.err
}

// Command returns a command that runs the binary with args, its
// environment this process's plus env.
func (b *Binary) Command(env []string, args ...string) (*exec.Cmd, error) {
	path, err := b.Path()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd, nil
}

// Output runs cmd to its end and returns its stdout, its stderr and its
// exit status; err is set only when it could not run at all.
func Output(cmd *exec.Cmd) (stdout, stderr string, code int, err error) {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	var ee *exec.ExitError
	if err := cmd.Run(); err != nil && !errors.As(err, &ee) {
		return "", "", -1, err
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode(), nil
}

// Remove deletes the binary.
func (b *Binary) Remove() error {
	if b.dir == "" {
		return nil
	}
	return os.RemoveAll(b.dir)
}

// Main is the TestMain of a package with process tests: it runs the tests
// of m (a *testing.M), removes the binaries they built, and exits with the
// tests' status.
func Main(m interface{ Run() int }, bins ...*Binary) {
	code := m.Run()
	for _, b := range bins {
		b.Remove()
	}
	os.Exit(code)
}

// On reports whether this build has the hooks on.
func On() bool { return on }
