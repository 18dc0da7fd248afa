package masking

import (
	"reflect"
	"strings"
	"testing"
)

// TestSpecialIDsAll checks that All yields every field of SpecialIDs, in
// order, under its JSON name, so that the checks ranging over it miss none.
func TestSpecialIDsAll(t *testing.T) {
	var ids SpecialIDs
	v := reflect.ValueOf(&ids).Elem()
	for i := range v.NumField() {
		v.Field(i).SetInt(int64(100 + i))
	}
	i := 0
	for name, id := range ids.All() {
		if i >= v.NumField() {
			t.Fatalf("All yields %s = %d after the %d fields", name, id, v.NumField())
		}
		f := v.Type().Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != tag || id != int32(100+i) {
			t.Errorf("All's id %d is %s = %d; want field %s: %s = %d", i, name, id, f.Name, tag, 100+i)
		}
		i++
	}
	if i != v.NumField() {
		t.Errorf("All yields %d ids; SpecialIDs has %d fields", i, v.NumField())
	}
	for range ids.All() {
		break // a stopped range must not panic
	}
}
