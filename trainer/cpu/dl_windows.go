package cpu

import "syscall"

// dlopen loads the DLL at path (a bare name: wherever Windows finds it).
func dlopen(path string) (uintptr, error) {
	h, err := syscall.LoadLibrary(path)
	return uintptr(h), err
}

// dlsym is the address of the symbol name in the DLL h.
func dlsym(h uintptr, name string) (uintptr, error) {
	return syscall.GetProcAddress(syscall.Handle(h), name)
}
