package pipeline

import (
	"encoding/json"
	"reflect"
	"testing"
)

// fill sets every number in v (a pointer) to a distinct nonzero value,
// gives every slice two elements, and returns the next value.
func fill(v reflect.Value, next int64) int64 {
	switch v.Kind() {
	case reflect.Int64:
		v.SetInt(next)
		return next + 1
	case reflect.Float64:
		v.SetFloat(float64(next))
		return next + 1
	case reflect.String:
		v.SetString("s")
		return next
	case reflect.Struct:
		for i := range v.NumField() {
			next = fill(v.Field(i), next)
		}
	case reflect.Array:
		for i := range v.Len() {
			next = fill(v.Index(i), next)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range v.Len() {
			next = fill(v.Index(i), next)
		}
	default:
		panic("stats field of kind " + v.Kind().String())
	}
	return next
}

// leaves lists every number of v with its path.
func leaves(v reflect.Value, path string, out map[string]int64) {
	switch v.Kind() {
	case reflect.Int64:
		out[path] = v.Int()
	case reflect.Struct:
		for i := range v.NumField() {
			leaves(v.Field(i), path+"."+v.Type().Field(i).Name, out)
		}
	case reflect.Array, reflect.Slice:
		for i := range v.Len() {
			leaves(v.Index(i), path+"["+string(rune('0'+i))+"]", out)
		}
	}
}

// Add covers every field of Stats, whatever fields it gains: each counter
// doubles when a Stats is added to a copy of itself, the histograms add
// element by element and the damage notes are appended. And the JSON form
// carries every field.
func TestStatsAddCoversEveryField(t *testing.T) {
	var s Stats
	fill(reflect.ValueOf(&s).Elem(), 1)
	s.Damage = s.Damage[:1]
	s.Doc.Reasons[OK] = 0 // never counted: a record without a reason is a document
	want := map[string]int64{}
	leaves(reflect.ValueOf(s), "Stats", want)

	var sum Stats
	sum.Add(s)
	sum.Add(s)
	got := map[string]int64{}
	leaves(reflect.ValueOf(sum), "Stats", got)
	for path, v := range want {
		if path == "Stats.Damage[0].Offset" || path == "Stats.Damage[0].Line" {
			continue
		}
		if got[path] != 2*v {
			t.Errorf("after adding a Stats twice, %s is %d; want %d (Add misses it)", path, got[path], 2*v)
		}
	}
	if len(sum.Damage) != 2 || sum.Damage[1] != s.Damage[0] {
		t.Errorf("Add: damage %v; want two copies of %v", sum.Damage, s.Damage)
	}

	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Stats
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Errorf("JSON round trip:\n%+v\nwant\n%+v\n(%s)", back, s, b)
	}
}
