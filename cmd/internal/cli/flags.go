package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// FlagSet returns a flag set for a command, named as the user types it
// ("glmprep build"). Its --help (or -h) prints help, then the flags, to
// stdout, and Parse returns ErrHelp.
func FlagSet(name, help string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() { PrintHelp(fs.Output(), fs, help) }
	return fs
}

// PrintHelp prints a command's help text and then its flags, each with its
// default unless the flag's own text already says what the default is.
// A command without flags prints no "Flags:" section.
func PrintHelp(w io.Writer, fs *flag.FlagSet, help string) {
	fmt.Fprint(w, help)
	var flags []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
	if len(flags) == 0 {
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	for _, f := range flags {
		fmt.Fprint(w, FlagLine(f))
	}
}

// FlagLine is one flag's entry in the help: "  --name VALUE" and the
// usage on the next line, with " (default X)" appended when the default is
// not a zero value and the usage does not state a default itself.
func FlagLine(f *flag.Flag) string {
	name, usage := flag.UnquoteUsage(f)
	var b strings.Builder
	fmt.Fprintf(&b, "  --%s", f.Name)
	if name != "" {
		b.WriteString(" " + name)
	}
	b.WriteString("\n    \t")
	b.WriteString(strings.ReplaceAll(usage, "\n", "\n    \t"))
	if def := f.DefValue; !isZero(def) && !strings.Contains(usage, "default") {
		if strings.ContainsAny(def, " \t") {
			def = fmt.Sprintf("%q", def)
		}
		fmt.Fprintf(&b, " (default %s)", def)
	}
	b.WriteString("\n")
	return b.String()
}

func isZero(def string) bool {
	switch def {
	case "", "0", "false", "[]", "0s":
		return true
	}
	return false
}

// Parse parses flags that may come before, between or after positional
// arguments (`glmprep build a.txt b.txt --out d`) and returns the
// positional ones; everything after "--" is positional. --help prints the
// help to the flag set's output and returns ErrHelp. A wrong flag is a
// one-line usage error: an unknown flag names the nearest known one.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	defer func() { fs.Usage = usage; fs.SetOutput(out) }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(out)
				usage()
				return nil, ErrHelp
			}
			return nil, flagError(fs, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// UsageError is a wrong command line: what is wrong, and where the help is.
type UsageError struct {
	Command string // as typed: "glmprep build"
	Msg     string
}

func (e *UsageError) Error() string {
	_, sub, ok := strings.Cut(e.Command, " ")
	if !ok { // the program itself: "glmprep: unknown command …" once
		return fmt.Sprintf("%s (see %s --help)", e.Msg, e.Command)
	}
	return fmt.Sprintf("%s: %s (see %s --help)", sub, e.Msg, e.Command)
}

// Is makes a UsageError an ErrUsage, for the exit status.
func (e *UsageError) Is(target error) bool { return target == ErrUsage }

// Usagef returns a usage error of fs's command: "build: missing --out (see
// glmprep build --help)".
func Usagef(fs *flag.FlagSet, format string, args ...any) error {
	return &UsageError{Command: fs.Name(), Msg: fmt.Sprintf(format, args...)}
}

// Missing returns the usage error of required flags that were not given:
// it names each of them.
func Missing(fs *flag.FlagSet, flags ...string) error {
	for i, f := range flags {
		if !strings.HasPrefix(f, "-") && !strings.Contains(f, " ") {
			flags[i] = "--" + f
		}
	}
	return Usagef(fs, "missing %s", strings.Join(flags, " and "))
}

// flagError rewrites the flag package's errors as usage errors.
func flagError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		m := fmt.Sprintf("unknown flag --%s", name)
		if s := Suggest(name, flagNames(fs), flagAliases()); s != "" {
			m += fmt.Sprintf("; did you mean --%s?", s)
		}
		return Usagef(fs, "%s", m)
	}
	msg = strings.Replace(msg, " -", " --", 1)
	return Usagef(fs, "%s", msg)
}

func flagNames(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

// flagAliases maps the names other tools (Megatron-LM, Hugging Face) use
// for a setting to glmkit's, for the suggestion of an unknown flag.
func flagAliases() map[string][]string {
	return map[string][]string{
		"json-keys": {"text-field"}, "json-key": {"text-field"}, "text-column": {"text-field"}, "column": {"text-field"},
		"seq-length": {"seq-len"}, "max-seq-length": {"seq-len"}, "max-length": {"seq-len"}, "block-size": {"seq-len"},
		"output": {"out"}, "output-prefix": {"out"}, "output-dir": {"out"}, "save": {"out"},
		"tokenizer-type": {"tokenizer"}, "vocab-file": {"tokenizer"}, "tokenizer-model": {"tokenizer"}, "tokenizer-name": {"tokenizer"},
		"data-path": {"data", "input"}, "train-data-path": {"data"}, "valid-data-path": {"eval-data"}, "dataset": {"data", "input"},
		"train-iters": {"steps"}, "max-steps": {"steps"}, "iterations": {"steps"},
		"micro-batch-size": {"batch"}, "batch-size": {"batch"}, "per-device-train-batch-size": {"batch"},
		"gradient-accumulation-steps": {"accum"}, "learning-rate": {"lr"}, "lr-warmup-iters": {"warmup"}, "warmup-steps": {"warmup"},
		"load": {"resume", "ckpt"}, "checkpoint": {"ckpt"}, "save-interval": {"checkpoint-every"}, "save-steps": {"checkpoint-every"},
		"eval-interval": {"eval-every"}, "eval-steps": {"eval-every"}, "eval-iters": {"eval-batches"}, "log-interval": {"log-every"}, "logging-steps": {"log-every"},
		"num-workers": {"workers"}, "num-proc": {"workers"}, "input-file": {"input"}, "files": {"input"},
		"overwrite": {"force"}, "overwrite-output-dir": {"force"},
	}
}

// Suggest returns the candidate nearest to name: one that another tool's
// name for the same setting maps to (aliases), else the closest by edit
// distance when it is close enough (a third of the name, at least 2), or
// one that starts with name or that name starts with; "" for none.
func Suggest(name string, candidates []string, aliases map[string][]string) string {
	for _, a := range aliases[name] {
		for _, c := range candidates {
			if c == a {
				return c
			}
		}
	}
	type cand struct {
		name string
		d    int
	}
	var best []cand
	for _, c := range candidates {
		d := editDistance(name, c)
		if d <= max(2, len(name)/3) || len(name) >= 3 && (strings.HasPrefix(c, name) || strings.HasPrefix(name, c) && len(c) >= 3) {
			best = append(best, cand{c, d})
		}
	}
	if len(best) == 0 {
		return ""
	}
	prefix := func(c string) int {
		n := 0
		for n < len(c) && n < len(name) && c[n] == name[n] {
			n++
		}
		return n
	}
	sort.SliceStable(best, func(i, j int) bool {
		if best[i].d != best[j].d {
			return best[i].d < best[j].d
		}
		return prefix(best[i].name) > prefix(best[j].name) // a tie goes to the longer common start
	})
	return best[0].name
}

// editDistance is the Levenshtein distance of a and b (in bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// UnknownCommand is the usage error of a command that does not exist,
// naming the nearest one.
func UnknownCommand(program, cmd string, commands []string) error {
	msg := fmt.Sprintf("unknown command %q", cmd)
	if s := Suggest(strings.TrimLeft(cmd, "-"), commands, nil); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return &UsageError{Command: program, Msg: msg}
}
