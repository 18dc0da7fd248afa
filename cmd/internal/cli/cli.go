// Package cli is what glmprep and glmtrain share on the command line: the
// table of subcommands that a program's help (Usage) and its dispatch
// (Dispatch) are both made from, flag sets that print a command's help,
// flags that may come after positional arguments, how an error becomes an
// exit status, how SIGINT and SIGTERM stop a command, and how text from a corpus or a model is shown on a
// terminal (Printable).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrUsage marks a command line that is wrong: the process exits with 2.
var ErrUsage = errors.New("usage")

// ErrHelp is returned by Parse after it printed a command's help because
// --help (or -h) was given: the process exits with 0 and prints nothing
// more.
var ErrHelp = errors.New("help requested")

// Interrupted is the cause of a command's context when SIGINT or SIGTERM
// stopped it.
type Interrupted struct{ Signal os.Signal }

func (e *Interrupted) Error() string { return "interrupted by " + signalName(e.Signal) }

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// Grace is how long a command has, after SIGINT or SIGTERM, to stop by
// itself (committing nothing half-done) before the process exits anyway.
// Either way it exits within a second of the signal, and a second signal
// exits at once.
const Grace = 800 * time.Millisecond

// session is what Main keeps for one run of a command.
type session struct {
	mu   sync.Mutex
	hint func() string
}

type sessionKey struct{}

// OnInterrupt registers what to tell the user if the command is
// interrupted: what was kept and how to continue. hint is called once,
// after the command stopped (or its grace ran out, while it may still
// run), so it must read what is on disk, not the command's state.
func OnInterrupt(ctx context.Context, hint func() string) {
	if s, ok := ctx.Value(sessionKey{}).(*session); ok {
		s.mu.Lock()
		s.hint = hint
		s.mu.Unlock()
	}
}

// Main runs a command with a context that SIGINT and SIGTERM cancel (with
// an *Interrupted cause), prints its error as "name: error" and exits 2 for
// a usage error, 1 for any other error, 0 otherwise (and after --help). An
// interrupted command exits with 128 + the signal number, after a message
// that says what was kept and how to continue (see OnInterrupt). A panic
// is reported as an internal error, without a stack trace.
func Main(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	os.Exit(main(name, os.Args[1:], os.Stdout, os.Stderr, run))
}

func main(name string, args []string, stdout, stderr io.Writer, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) int {
	s := &session{}
	ctx, cancel := context.WithCancelCause(context.WithValue(context.Background(), sessionKey{}, s))
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("internal error: %v (this is a bug in %s; please report it with the command line)", r, name)
			}
		}()
		done <- run(ctx, args, stdout, stderr)
	}()
	var err error
	var sig os.Signal
	select {
	case err = <-done:
	case sig = <-sigs:
		cancel(&Interrupted{sig})
		select {
		case err = <-done:
		case <-time.After(Grace):
			err = context.Canceled
		case <-sigs:
			err = context.Canceled
		}
	}
	if sig != nil && err != nil {
		msg := fmt.Sprintf("%s: interrupted by %s", name, signalName(sig))
		s.mu.Lock()
		hint := s.hint
		s.mu.Unlock()
		if hint != nil {
			if h := hint(); h != "" {
				msg += "; " + h
			}
		}
		fmt.Fprintln(stderr, msg)
		if n, ok := sig.(syscall.Signal); ok {
			return 128 + int(n)
		}
		return 130
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, ErrHelp) {
		return 0 // the help was printed to stdout
	}
	fmt.Fprintf(stderr, "%s: %s\n", name, Message(err.Error()))
	if errors.Is(err, ErrUsage) {
		return 2
	}
	return 1
}

// Command returns the command line of this process with the boolean
// flags named in drop removed and the flag add (a name; "" for none)
// appended unless it is there, quoted for a POSIX shell: what to run to
// continue. args are the arguments after the program name.
func Command(args []string, drop []string, add string) string {
	isFlag := func(a, name string) bool {
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		return a == name || strings.HasPrefix(a, name+"=")
	}
	parts := []string{filepath.Base(os.Args[0])}
	found := add == ""
	for _, a := range args {
		skip := false
		for _, d := range drop {
			skip = skip || isFlag(a, d)
		}
		if add != "" && isFlag(a, add) {
			found, skip = true, a != "--"+add && a != "-"+add
			if skip {
				found = false
			}
		}
		if !skip {
			parts = append(parts, a)
		}
	}
	if !found {
		parts = append(parts, "--"+add)
	}
	for i, p := range parts {
		parts[i] = shellQuote(p)
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=,:+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
