// Package dynlib opens the shared libraries the backends use (OpenBLAS,
// the CUDA driver, cuBLAS, NVRTC) at run time, without cgo: purego's
// dlopen on Unix, LoadLibrary on Windows. Bind then sets a struct's
// function fields to the library's C functions by the names in their
// tags, through purego's RegisterFunc.
package dynlib
