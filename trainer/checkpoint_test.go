package trainer_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/internal/atomicfile"
	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/trainer"
	"github.com/glmkit/glmkit/trainer/cpu"
	"github.com/glmkit/glmkit/trainer/safetensors"
)

// Issue 11, classes 3 and 5 for checkpoints: every file of a checkpoint is
// checked before use (numbers in range, shapes consistent with the
// tensors in the files before anything is allocated), and a killed run's
// temporary checkpoint directories are cleaned at the start of the next.

// tinyCheckpoint trains 2 steps and returns the checkpoint directory.
func tinyCheckpoint(t *testing.T) string {
	t.Helper()
	tc := tinyTrainConfig(t, 2)
	_, _, res := run(t, newCPU[float32](t, cpu.Options{}), tc, -1)
	return res.Checkpoint
}

// copyDir copies a checkpoint so each case edits its own.
func copyDir(t *testing.T, src string) string {
	return glmtest.CopyFiles(t, src, filepath.Join(t.TempDir(), filepath.Base(src)))
}

func editJSON(t *testing.T, path string, f func(m map[string]any)) {
	t.Helper()
	b, _ := os.ReadFile(path)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, _ = json.Marshal(m)
	os.WriteFile(path, b, 0o644)
}

func TestEditedCheckpoints(t *testing.T) {
	ck := tinyCheckpoint(t)
	for name, edit := range checkpointEdits(t) {
		t.Run(name, func(t *testing.T) {
			d := copyDir(t, ck)
			edit(d)
			_, err := trainer.LoadModel(d, newCPU[float32](t, cpu.Options{}))
			if err == nil {
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), d) && !strings.Contains(err.Error(), filepath.Base(d)) {
				t.Errorf("the error does not name the checkpoint: %v", err)
			}
			if strings.HasPrefix(name, "a weight") && !strings.HasSuffix(name, "finite") && !strings.Contains(err.Error(), " holds ") {
				t.Errorf("the error does not name the weight that is not finite: %v", err)
			}
			if strings.HasSuffix(name, "finite") && !strings.Contains(err.Error(), "the file was damaged or replaced") {
				t.Errorf("a changed weight: %v; want the sha256 its state recorded", err)
			}
		})
	}
	editedState(t, ck)
}

// checkpointEdits are damages of a checkpoint's config and model that
// LoadModel must refuse, naming the checkpoint.
func checkpointEdits(t *testing.T) map[string]func(dir string) {
	model := func(m map[string]any) map[string]any { return m["model"].(map[string]any) }
	return map[string]func(dir string){
		"hidden 4M": func(d string) {
			editJSON(t, filepath.Join(d, "config.json"), func(m map[string]any) { model(m)["hidden"] = 4 << 20 })
		},
		"vocab 2^40": func(d string) {
			editJSON(t, filepath.Join(d, "config.json"), func(m map[string]any) { model(m)["vocab"] = 1 << 40 })
		},
		"max_pos 2^40": func(d string) {
			editJSON(t, filepath.Join(d, "config.json"), func(m map[string]any) { model(m)["max_pos"] = 1 << 40 })
		},
		"100M layers": func(d string) {
			editJSON(t, filepath.Join(d, "config.json"), func(m map[string]any) { model(m)["layers"] = 100_000_000 })
		},
		"negative heads": func(d string) {
			editJSON(t, filepath.Join(d, "config.json"), func(m map[string]any) { model(m)["heads"] = -4 })
		},
		"one more layer": func(d string) {
			editJSON(t, filepath.Join(d, "config.json"), func(m map[string]any) { model(m)["layers"] = 3 })
		},
		"wider": func(d string) {
			editJSON(t, filepath.Join(d, "config.json"), func(m map[string]any) { model(m)["hidden"] = 128 })
		},
		"bigger vocab": func(d string) {
			editJSON(t, filepath.Join(d, "config.json"), func(m map[string]any) { model(m)["vocab"] = 1 << 20 })
		},
		"dropout 2": func(d string) {
			editJSON(t, filepath.Join(d, "config.json"), func(m map[string]any) { model(m)["hidden_dropout"] = 2 })
		},
		"unknown field": func(d string) {
			editJSON(t, filepath.Join(d, "config.json"), func(m map[string]any) { m["surprise"] = true })
		},
		"config not json": func(d string) { os.WriteFile(filepath.Join(d, "config.json"), []byte("{\"format\": 1, "), 0o644) },
		"config a link": func(d string) {
			os.Rename(filepath.Join(d, "config.json"), filepath.Join(d, "..", "cfg.json"))
			os.Symlink(filepath.Join(d, "..", "cfg.json"), filepath.Join(d, "config.json"))
		},
		"model truncated": func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, "model.safetensors"))
			os.WriteFile(filepath.Join(d, "model.safetensors"), b[:len(b)/2], 0o644)
		},
		"model header huge": func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, "model.safetensors"))
			b[7] = 0x7f
			os.WriteFile(filepath.Join(d, "model.safetensors"), b, 0o644)
		},
		"model shape overflows": func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, "model.safetensors"))
			b = bytes.Replace(b, []byte(`"shape":[64]`), []byte(`"shape":[4294967296,4294967296]`), 1)
			os.WriteFile(filepath.Join(d, "model.safetensors"), b, 0o644)
		},
		"model missing": func(d string) { os.Remove(filepath.Join(d, "model.safetensors")) },
		"a weight NaN": func(d string) {
			setFloat(t, filepath.Join(d, "model.safetensors"), "transformer.layers.0.mlp.dense_h_to_4h.weight", 17, float32(math.NaN()))
		},
		"a weight Inf": func(d string) {
			setFloat(t, filepath.Join(d, "model.safetensors"), "word_embeddings.weight", 3, float32(math.Inf(-1)))
		},
		"a weight changed, finite": func(d string) {
			setFloatSealed(t, filepath.Join(d, "model.safetensors"), "word_embeddings.weight", 3, 0.125)
		},
	}
}

// setFloat sets element i of the named F32 tensor of a checkpoint's
// safetensors file, as a run that diverged would have saved it: the state
// beside it loses its record of the files' sha256 and its checksum, as a
// checkpoint written before them has none, so that what is checked is the
// value itself.
func setFloat(t *testing.T, path, name string, i int, v float32) {
	t.Helper()
	setFloatSealed(t, path, name, i, v)
	editJSON(t, filepath.Join(filepath.Dir(path), "trainer_state.json"), func(m map[string]any) {
		delete(m, "files")
		delete(m, "checksum")
	})
}

// setFloatSealed is setFloat with the state left as it was: an edit or a
// flipped bit after the checkpoint was written.
func setFloatSealed(t *testing.T, path, name string, i int, v float32) {
	t.Helper()
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	x, ok := f.Tensors[name]
	if !ok || x.DType != safetensors.F32 {
		t.Fatalf("no F32 tensor %s in %s", name, path)
	}
	binary.LittleEndian.PutUint32(x.Data[4*i:], math.Float32bits(v))
	if err := safetensors.WriteFile(path, f.Tensors, f.Metadata); err != nil {
		t.Fatal(err)
	}
}

// editedState damages the trainer_state.json and the optimizer file of
// checkpoint ck, which LoadCheckpoint must refuse.
func editedState(t *testing.T, ck string) {
	// trainer_state.json, read by --resume. Each edit is made as to a
	// state written before states had a checksum (its checks are what
	// stops it); an edit that leaves the checksum as it was is caught by it.
	unsealed := func(f func(m map[string]any)) func(m map[string]any) {
		return func(m map[string]any) { f(m); delete(m, "checksum") }
	}
	for name, edit := range map[string]func(m map[string]any){
		"negative step":   unsealed(func(m map[string]any) { m["step"] = -1 }),
		"step of another": unsealed(func(m map[string]any) { m["step"] = 7 }),
		"negative tokens": unsealed(func(m map[string]any) { m["tokens"] = -5 }),
		"other rng":       unsealed(func(m map[string]any) { m["rng"] = "mt19937" }),
		"unknown field":   unsealed(func(m map[string]any) { m["x"] = 1 }),
		"loader state edited": func(m map[string]any) {
			st, _ := base64.StdEncoding.DecodeString(m["loader_state"].(string))
			st[0]-- // the source's position, one batch back: still a position it could be at
			m["loader_state"] = base64.StdEncoding.EncodeToString(st)
		},
		"tokens edited": func(m map[string]any) { m["tokens"] = m["tokens"].(float64) + 1 },
	} {
		t.Run("state "+name, func(t *testing.T) {
			d := copyDir(t, ck)
			editJSON(t, filepath.Join(d, "trainer_state.json"), edit)
			m, err := trainer.NewModel(tinyConfig(t), newCPU[float32](t, cpu.Options{}))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			opt, _ := trainer.NewAdamW(m)
			_, err = trainer.LoadCheckpoint(d, m, opt)
			if err == nil || !strings.Contains(err.Error(), "trainer_state.json") && !strings.Contains(err.Error(), filepath.Base(d)) {
				t.Fatalf("err %v", err)
			}
			if strings.HasSuffix(name, " edited") && !strings.Contains(err.Error(), "checksum") {
				t.Errorf("an edit that kept the checksum: %v; want the checksum's error", err)
			}
		})
	}
	// An optimizer file of another model.
	d := copyDir(t, ck)
	b, _ := os.ReadFile(filepath.Join(d, "model.safetensors"))
	os.WriteFile(filepath.Join(d, "optimizer.safetensors"), b, 0o644)
	m, _ := trainer.NewModel(tinyConfig(t), newCPU[float32](t, cpu.Options{}))
	defer m.Close()
	opt, _ := trainer.NewAdamW(m)
	if _, err := trainer.LoadCheckpoint(d, m, opt); err == nil || !strings.Contains(err.Error(), "optimizer.safetensors") {
		t.Errorf("an optimizer file without moments: %v", err)
	}
	// Second moments that are negative or not finite.
	for _, v := range []float32{-1e-3, float32(math.NaN())} {
		d := copyDir(t, ck)
		setFloat(t, filepath.Join(d, "optimizer.safetensors"), "word_embeddings.weight.exp_avg_sq", 5, v)
		if _, err := trainer.LoadCheckpoint(d, m, opt); err == nil || !strings.Contains(err.Error(), "word_embeddings.weight.exp_avg_sq holds") {
			t.Errorf("a second moment of %v: %v", v, err)
		}
	}
	// A first moment changed after the checkpoint was written, still finite.
	d = copyDir(t, ck)
	setFloatSealed(t, filepath.Join(d, "optimizer.safetensors"), "word_embeddings.weight.exp_avg", 5, 0.5)
	if _, err := trainer.LoadCheckpoint(d, m, opt); err == nil || !strings.Contains(err.Error(), "optimizer.safetensors has sha256") {
		t.Errorf("a changed first moment: %v", err)
	}
}

func TestCheckpointTemporaries(t *testing.T) {
	out := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("no true(1) for a pid that is gone")
	}
	pid := strconv.Itoa(dead.Process.Pid)
	asDead := func(name string) string {
		return strings.Replace(name, "-"+strconv.Itoa(os.Getpid())+"-", "-"+pid+"-", 1)
	}
	// A half-written checkpoint of a killed run, a checkpoint it moved
	// aside to replace (its replacement never arrived), and another
	// moved aside whose replacement did arrive.
	half := filepath.Join(out, asDead(atomicfile.Name("ckpt-00000004")))
	os.MkdirAll(half, 0o755)
	os.WriteFile(filepath.Join(half, "model.safetensors"), make([]byte, 1000), 0o644)
	ck := tinyCheckpoint(t)
	aside := filepath.Join(out, asDead(atomicfile.Name("old-ckpt-00000002")))
	os.Rename(copyDir(t, ck), aside)
	os.MkdirAll(filepath.Join(out, "ckpt-00000006"), 0o755)
	aside6 := filepath.Join(out, asDead(atomicfile.Name("old-ckpt-00000006")))
	os.MkdirAll(aside6, 0o755)
	// Files that are not glmkit's temporaries.
	mine := []string{".ckpt-00000008.tmp-123", "notes.tmp", ".glmkit-notes"}
	for _, n := range mine {
		os.WriteFile(filepath.Join(out, n), []byte("mine"), 0o644)
	}
	done, err := trainer.CleanCheckpointTemps(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cleaned: %q", done)
	for _, p := range []string{half, aside, aside6} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	if _, err := trainer.LoadModel(filepath.Join(out, "ckpt-00000002"), newCPU[float32](t, cpu.Options{})); err != nil {
		t.Errorf("the checkpoint moved aside was not put back: %v", err)
	}
	for _, n := range mine {
		if _, err := os.Stat(filepath.Join(out, n)); err != nil {
			t.Errorf("%s, not a glmkit temporary, was removed", n)
		}
	}
}

func FuzzSafetensorsHeader(f *testing.F) {
	var b bytes.Buffer
	safetensors.Write(&b, map[string]safetensors.Tensor{
		"a": safetensors.FromFloat32([]int{2, 3}, make([]float32, 6)),
		"b": safetensors.FromInt32([]int{4}, make([]int32, 4)),
	}, map[string]string{"format": "pt"})
	f.Add(b.Bytes())
	f.Add([]byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}"))
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := safetensors.Parse(data)
		if err != nil {
			return
		}
		for name, tn := range file.Tensors {
			n := tn.DType.Size()
			for _, d := range tn.Shape {
				n *= d
			}
			if n != len(tn.Data) {
				t.Fatalf("%s: shape %v of %s with %d bytes", name, tn.Shape, tn.DType, len(tn.Data))
			}
		}
	})
}
