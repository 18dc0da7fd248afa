// Package strictjson decodes the JSON that glmkit writes for itself and
// reads back: build plans, task records, training state, a training run's
// data file. A file of glmkit's holds one JSON value of a known type, so
// Decode refuses a field the type does not name and anything after the
// value: such a file is damaged, hand-edited or from another version, and
// its reader says so instead of going on with part of it.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Decode parses b, one JSON value, into v, refusing unknown fields and
// data after the value (white space aside).
func Decode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) != 0 {
		return errors.New("data after the JSON value")
	}
	return nil
}
