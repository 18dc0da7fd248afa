package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/glmkit/glmkit/cmd/internal/cli"
	"github.com/glmkit/glmkit/trainer/cpu"
	"github.com/glmkit/glmkit/trainer/cuda"
)

const doctorHelp = `Usage: glmtrain doctor

Prints the backends this machine can run: the CPU backend (with OpenBLAS or
pure Go) and the CUDA backend: the driver, devices, cuBLAS and NVRTC found
(where it looked when one is missing), then whether the backend starts
(which compiles its kernels). It changes nothing and needs no GPU.

Examples:
  glmtrain doctor
  glmtrain doctor | grep -A3 cuda:
`

func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.FlagSet("glmtrain doctor", doctorHelp, stdout)
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "go %s, %s/%s, %d CPUs\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	be, err := cpu.New[float32](cpu.Options{})
	if err != nil {
		fmt.Fprintf(stdout, "cpu:  %v\n", err)
	} else {
		fmt.Fprintf(stdout, "cpu:  %s\n", be.Name())
		be.Close()
	}
	if ob, err := cpu.New[float32](cpu.Options{BLAS: "openblas"}); err != nil {
		fmt.Fprintf(stdout, "      OpenBLAS not loaded (%v); install libopenblas0 for faster matrix products\n", err)
	} else {
		fmt.Fprintf(stdout, "      OpenBLAS: %s\n", ob.Name())
		ob.Close()
	}
	fmt.Fprint(stdout, "cuda: ")
	rep := cuda.Probe(cuda.Options{})
	rep.Write(stdout, "      ")
	if rep.DriverErr != nil {
		fmt.Fprintln(stdout, "      the CUDA backend is unavailable: --backend auto runs on the CPU")
		return nil
	}
	gb, err := cuda.New(cuda.Options{})
	if err != nil {
		fmt.Fprintf(stdout, "      backend: %v\n", err)
		return nil
	}
	defer gb.Close()
	in := gb.Info()
	fmt.Fprintf(stdout, "      backend: %s\n      kernels: %s", gb.Name(), in.Kernels)
	if in.ParamsChecked > 0 {
		fmt.Fprintf(stdout, ", parameter layout confirmed by the driver for %d of %d", in.ParamsChecked, in.KernelCount)
	}
	fmt.Fprintln(stdout)
	for _, n := range in.Notes {
		fmt.Fprintf(stdout, "      note: %s\n", strings.ReplaceAll(n, "\n", "\n            "))
	}
	return nil
}
