package dynlib

import (
	"fmt"
	"reflect"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Bind sets the function fields of the struct fns points to to the C
// functions of the library h that their tags name: `sym:"cuInit"` for one
// the library must have, `sym:"cuGetProcAddress_v2,optional"` for one it
// may lack (the field stays nil). Fields without a sym tag are left alone,
// so a struct can hold the library's functions next to its other state,
// each C name beside its Go signature. The result names the required
// symbols the library lacks, in field order; none is bound when there is
// one.
func Bind(h uintptr, fns any) (missing []string) {
	v := reflect.ValueOf(fns)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("dynlib.Bind: %T is not a pointer to a struct", fns))
	}
	v = v.Elem()
	type binding struct {
		field reflect.Value
		sym   uintptr
	}
	var found []binding
	for i := range v.NumField() {
		tag, ok := v.Type().Field(i).Tag.Lookup("sym")
		if !ok {
			continue
		}
		name, opt, _ := strings.Cut(tag, ",")
		sym, err := Sym(h, name)
		switch {
		case err == nil && sym != 0:
			found = append(found, binding{v.Field(i), sym})
		case opt != "optional":
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return missing
	}
	for _, b := range found {
		// The fields are unexported: reach them through their address.
		fptr := reflect.NewAt(b.field.Type(), unsafe.Pointer(b.field.UnsafeAddr()))
		purego.RegisterFunc(fptr.Interface(), b.sym)
	}
	return nil
}
