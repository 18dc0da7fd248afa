// Package dynlib opens the shared libraries the backends use (OpenBLAS,
// the CUDA driver, cuBLAS, NVRTC) at run time, without cgo: purego's
// dlopen on Unix, LoadLibrary on Windows. A handle it returns is what
// purego's RegisterLibFunc takes.
package dynlib
