package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// A Subcommand is one command of a program: its name, its usage line
// (the arguments after the name, and what it does) and what runs it with
// the arguments after the name.
type Subcommand struct {
	Name    string
	Args    string // the synopsis after the name: "--ckpt DIR --data DIR"
	Summary string // what it does, in a few words (may be empty)
	Run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// versionSummary is the usage line of the version command every program has.
const versionSummary = "the version and commit of this binary (also --version)"

// Usage is a program's help: title, then a usage line for each command of
// cmds and for version, the names, arguments and summaries each in a
// column, then how to get a command's own help.
func Usage(program, title string, cmds []Subcommand) string {
	lines := append(slices.Clone(cmds), Subcommand{Name: "version", Summary: versionSummary})
	nameW, argsW := 0, 0
	for _, c := range lines {
		nameW = max(nameW, len(c.Name))
	}
	left := func(c Subcommand) string {
		if c.Args == "" {
			return c.Name
		}
		return fmt.Sprintf("%-*s %s", nameW, c.Name, c.Args)
	}
	for _, c := range lines {
		if c.Summary != "" {
			argsW = max(argsW, utf8.RuneCountInString(left(c)))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nUsage:\n", title)
	for _, c := range lines {
		l := left(c)
		if c.Summary != "" {
			l += strings.Repeat(" ", argsW-utf8.RuneCountInString(l)+2) + c.Summary
		}
		fmt.Fprintf(&b, "  %s %s\n", program, l)
	}
	fmt.Fprintf(&b, "\nRun \"%s COMMAND --help\" (or \"%s help COMMAND\") for a command's\nflags and examples.\n", program, program)
	return b.String()
}

// Dispatch runs the command that args[0] names, one of cmds or the two
// that every program has: version (also --version) and help (also -h,
// --help; "help COMMAND" is "COMMAND --help"), which prints Usage. No
// command prints Usage to stderr and is a usage error; an unknown one is a
// usage error naming the nearest command.
func Dispatch(ctx context.Context, program, title string, cmds []Subcommand, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, Usage(program, title, cmds))
		return &UsageError{Command: program, Msg: "no command"}
	}
	name, rest := args[0], args[1:]
	names := make([]string, 0, len(cmds)+2)
	for _, c := range cmds {
		if c.Name == name {
			return c.Run(ctx, rest, stdout, stderr)
		}
		names = append(names, c.Name)
	}
	switch name {
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "%s %s\n", program, ReadBuild())
		return nil
	case "help", "-h", "--help", "-help":
		if len(rest) == 1 && slices.Contains(names, rest[0]) {
			return Dispatch(ctx, program, title, cmds, []string{rest[0], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, Usage(program, title, cmds))
		return nil
	}
	return UnknownCommand(program, name, append(names, "version", "help"))
}
