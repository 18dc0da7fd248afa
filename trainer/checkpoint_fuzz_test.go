package trainer

import (
	"os"
	"path/filepath"
	"testing"
)

// Fuzz tests of the parsers of a checkpoint's JSON files (config.json,
// trainer_state.json): any bytes give a checked value or an error naming
// the file, never a panic, and a config that passes has a layout small
// enough to compute.

func FuzzCheckpointConfig(f *testing.F) {
	f.Add([]byte(`{"format":1,"model":{"layers":2,"hidden":64,"heads":4,"vocab":300,"max_pos":128,"hidden_dropout":0.1,"attention_dropout":0.1}}`))
	f.Add([]byte(`{"format":1,"model":{"layers":100000000,"hidden":4194304,"heads":4,"vocab":1099511627776,"max_pos":1099511627776}}`))
	f.Add([]byte(`{"format":1,"model":{"layers":2,"hidden":64,"heads":4,"vocab":300,"max_pos":128},"train":{"steps":-1}}`))
	f.Add([]byte(`{"format":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, configFile), data, 0o644)
		cfg, _, err := ReadCheckpointConfig(dir)
		if err != nil {
			return
		}
		if n := len(Layout(cfg)); n != 5+12*cfg.Layers {
			t.Fatalf("layout of %d tensors", n)
		}
	})
}

func FuzzTrainerState(f *testing.F) {
	f.Add([]byte(`{"step":2,"tokens":160,"seed":1234,"rng":"` + dropoutScheme + `","loader_state":"AQI="}`))
	f.Add([]byte(`{"step":-2}`))
	f.Add([]byte(`{"step":2,"loader_state":"!!"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := filepath.Join(t.TempDir(), "ckpt-00000002")
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, stateFile), data, 0o644)
		st, err := readState(dir)
		if err != nil {
			return
		}
		if st.Step != 2 || st.Tokens < 0 || st.RNG != dropoutScheme {
			t.Fatalf("accepted %+v", st)
		}
	})
}
