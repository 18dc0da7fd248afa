package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
)

// A Subcommand is one command of a program: its name and what runs it
// with the arguments after the name.
type Subcommand struct {
	Name string
	Run  func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// Dispatch runs the command that args[0] names, one of cmds or the two
// that every program has: version (also --version) and help (also -h,
// --help; "help COMMAND" is "COMMAND --help"). No command prints usage to
// stderr and is a usage error; an unknown one is a usage error naming the
// nearest command.
func Dispatch(ctx context.Context, program, usage string, cmds []Subcommand, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
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
			return Dispatch(ctx, program, usage, cmds, []string{rest[0], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	return UnknownCommand(program, name, append(names, "version", "help"))
}
