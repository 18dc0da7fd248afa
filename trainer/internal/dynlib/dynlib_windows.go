package dynlib

import "syscall"

// Open loads the DLL at path (a bare name: wherever Windows finds it).
func Open(path string) (uintptr, error) {
	h, err := syscall.LoadLibrary(path)
	return uintptr(h), err
}

// Sym is the address of the symbol name in the DLL h.
func Sym(h uintptr, name string) (uintptr, error) {
	return syscall.GetProcAddress(syscall.Handle(h), name)
}

// Close unloads the DLL h (Windows keeps it while other handles hold it).
func Close(h uintptr) error { return syscall.FreeLibrary(syscall.Handle(h)) }
