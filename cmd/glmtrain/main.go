// Command glmtrain trains GLM models from glmprep's shards, evaluates them,
// fills blanks with them and plots their loss curves. See `glmtrain help`.
package main

import (
	"context"
	"fmt"
	"io"

	"github.com/glmkit/glmkit/cmd/internal/cli"
)

const usage = `glmtrain trains GLM from glmprep shards.

Usage:
  glmtrain train  --data DIR --preset tiny|small|base|large --steps N --out DIR [flags]
  glmtrain eval   --ckpt DIR --data DIR                evaluation loss and perplexity per objective
  glmtrain infill --ckpt DIR "text with [MASK] blanks"  fill each blank with the model
  glmtrain plot   OUT [--png FILE]                      draw OUT/metrics.jsonl's loss curves
  glmtrain doctor                                       which backends this machine can run

Run "glmtrain COMMAND --help" for a command's flags and examples.
`

func main() { cli.Main("glmtrain", run) }

// run is glmtrain without the process around it, so tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command", cli.ErrUsage)
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
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: unknown command %q", cli.ErrUsage, cmd)
	}
}
