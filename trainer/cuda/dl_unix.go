//go:build !windows

package cuda

import "github.com/ebitengine/purego"

// dlopen loads the shared library at path (a bare name: wherever the
// dynamic loader finds it).
func dlopen(path string) (uintptr, error) {
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
}

// dlsym is the address of the symbol name in the library h.
func dlsym(h uintptr, name string) (uintptr, error) { return purego.Dlsym(h, name) }
