//go:build !windows

package dynlib

import "github.com/ebitengine/purego"

// Open loads the shared library at path (a bare name: wherever the
// dynamic loader finds it).
func Open(path string) (uintptr, error) {
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
}

// Sym is the address of the symbol name in the library h.
func Sym(h uintptr, name string) (uintptr, error) { return purego.Dlsym(h, name) }

// Close unloads the library h (the loader keeps it while other handles
// hold it).
func Close(h uintptr) error { return purego.Dlclose(h) }
