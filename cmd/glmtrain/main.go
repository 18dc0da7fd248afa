// Command glmtrain trains GLM models from glmprep's shards, evaluates them,
// fills blanks with them and plots their loss curves. See `glmtrain help`.
package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/glmkit/glmkit/cmd/internal/cli"
)

const usage = `glmtrain trains GLM from glmprep shards.

Usage:
  glmtrain train  --data DIR --preset tiny|small|base|large --steps N --out DIR [flags]
  glmtrain eval   --ckpt DIR --data DIR                evaluation loss and perplexity per objective
  glmtrain infill --ckpt DIR "text with [MASK] blanks"  fill each blank with the model
  glmtrain plot   OUT [--png FILE]                      draw OUT/metrics.jsonl's loss curves
  glmtrain doctor                                       which backends this machine can run
  glmtrain version                                      the version and commit of this binary (also --version)

Run "glmtrain COMMAND --help" (or "glmtrain help COMMAND") for a command's
flags and examples.
`

// commands are glmtrain's subcommands, for suggestions.
func commands() []string {
	return []string{"train", "eval", "infill", "plot", "doctor", "version", "help"}
}

func main() { cli.Main("glmtrain", run) }

// run is glmtrain without the process around it, so tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &cli.UsageError{Command: "glmtrain", Msg: "no command"}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "train":
		return cmdTrain(ctx, rest, stdout, stderr)
	case "eval":
		return cmdEval(ctx, rest, stdout, stderr)
	case "infill":
		return cmdInfill(ctx, rest, stdout, stderr)
	case "plot":
		return cmdPlot(ctx, rest, stdout, stderr)
	case "doctor":
		return cmdDoctor(ctx, rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "glmtrain %s\n", cli.ReadBuild())
		return nil
	case "help", "-h", "--help", "-help":
		if len(rest) == 1 && slices.Contains(commands(), rest[0]) && rest[0] != "help" && rest[0] != "version" {
			return run(ctx, []string{rest[0], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return cli.UnknownCommand("glmtrain", cmd, commands())
	}
}
