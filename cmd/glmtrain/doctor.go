package main

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/glmkit/glmkit/trainer/cpu"
)

const doctorHelp = `Usage: glmtrain doctor

Prints the backends this machine can run: the CPU backend (with OpenBLAS or
pure Go) and the CUDA backend.
`

func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("doctor", doctorHelp, stderr)
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "go %s, %s/%s, %d CPUs\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	be, err := cpu.New[float32](cpu.Options{})
	if err != nil {
		fmt.Fprintf(stdout, "cpu:  %v\n", err)
	} else {
		fmt.Fprintf(stdout, "cpu:  %s\n", be.Name())
	}
	if ob, err := cpu.New[float32](cpu.Options{BLAS: "openblas"}); err != nil {
		fmt.Fprintf(stdout, "      OpenBLAS not loaded (%v); install libopenblas0 for faster matrix products\n", err)
	} else {
		fmt.Fprintf(stdout, "      OpenBLAS: %s\n", ob.Name())
	}
	fmt.Fprintln(stdout, "cuda: not in this build yet (the CPU backend runs everything)")
	return nil
}
