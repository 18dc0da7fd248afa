package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/glmkit/glmkit/trainer/safetensors"
)

// Files of a checkpoint directory (see SaveCheckpoint).
const (
	modelFile     = "model.safetensors"
	optimizerFile = "optimizer.safetensors"
	configFile    = "config.json"
	stateFile     = "trainer_state.json"

	checkpointFormat = 1
	checkpointPrefix = "ckpt-"
)

// dropoutScheme documents, in the trainer state, how dropout masks are
// drawn; a run resumes bitwise only under the same scheme.
const dropoutScheme = "pcg(seed, mix(step, micro, site, block)) v1"

// TrainerState is the training progress a checkpoint records besides the
// weights and the optimizer.
type TrainerState struct {
	// Step is the number of optimizer steps taken.
	Step int `json:"step"`
	// Tokens is the number of batch positions (B·T, padding included)
	// trained on.
	Tokens int64 `json:"tokens"`
	// Seed is the run's seed (initialisation and dropout).
	Seed uint64 `json:"seed"`
	// RNG names the dropout RNG scheme; the dropout state itself is a pure
	// function of (Seed, Step), so there is no stream position to save.
	RNG string `json:"rng"`
	// LoaderState is the training BatchSource's State() after the step
	// (base64 in the JSON).
	LoaderState []byte `json:"loader_state"`
	// DataFingerprint identifies the training data when the source
	// implements Fingerprinter; a resume on other data fails.
	DataFingerprint string `json:"data_fingerprint,omitempty"`
	// Backend describes the backend that wrote the checkpoint.
	Backend string `json:"backend,omitempty"`
}

// checkpointConfig is config.json.
type checkpointConfig struct {
	Format int          `json:"format"`
	Model  Config       `json:"model"`
	Train  *TrainConfig `json:"train,omitempty"`
}

// SaveCheckpoint writes a checkpoint of m (and opt, when not nil) to dir,
// replacing an existing checkpoint there. A checkpoint is a directory:
//
//	model.safetensors      the parameters, F32, named as PyTorch's GLMModel
//	                       state dict ("word_embeddings.weight",
//	                       "transformer.layers.0.attention.query_key_value.weight", …)
//	optimizer.safetensors  AdamW's moments, "<name>.exp_avg" and "<name>.exp_avg_sq"
//	config.json            {"format": 1, "model": Config, "train": TrainConfig}
//	trainer_state.json     TrainerState: step, seed, dropout RNG scheme,
//	                       loader state (base64), data fingerprint
//
// SaveCheckpoint writes it into a temporary directory beside the target,
// syncs every file and the directory, then renames it into place, so a
// crash never leaves a partial checkpoint under the real name.
func SaveCheckpoint(dir string, m *Model, opt *AdamW, tc *TrainConfig, st TrainerState) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op after the rename

	params, err := m.ParamsHost()
	if err != nil {
		return err
	}
	if err := safetensors.WriteFile(filepath.Join(tmp, modelFile), m.stateDict(params, ""), map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	if opt != nil {
		mom, vel, err := opt.Moments(m.be)
		if err != nil {
			return err
		}
		ts := m.stateDict(mom, ".exp_avg")
		for k, v := range m.stateDict(vel, ".exp_avg_sq") {
			ts[k] = v
		}
		if err := safetensors.WriteFile(filepath.Join(tmp, optimizerFile), ts, map[string]string{"format": "pt", "optimizer": "adamw"}); err != nil {
			return fmt.Errorf("trainer: checkpoint: %w", err)
		}
	}
	if err := writeJSON(filepath.Join(tmp, configFile), checkpointConfig{Format: checkpointFormat, Model: m.cfg, Train: tc}); err != nil {
		return err
	}
	st.RNG = dropoutScheme
	st.Backend = m.be.Name()
	if err := writeJSON(filepath.Join(tmp, stateFile), st); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	// Move an existing checkpoint aside first: rename does not replace a
	// non-empty directory.
	if _, err := os.Stat(dir); err == nil {
		old := tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("trainer: checkpoint: %w", err)
		}
		defer os.RemoveAll(old)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	return syncDir(parent)
}

// stateDict names the tensors of a flat vector laid out as the parameters.
func (m *Model) stateDict(flat []float32, suffix string) map[string]safetensors.Tensor {
	ts := make(map[string]safetensors.Tensor, len(m.tensors))
	for _, t := range m.tensors {
		ts[t.Name+suffix] = safetensors.FromFloat32(t.Shape, flat[t.Offset:t.Offset+t.Size()])
	}
	return ts
}

// fromStateDict is the inverse of stateDict; every tensor must be present
// with the right shape.
func (m *Model) fromStateDict(f safetensors.File, suffix string) ([]float32, error) {
	flat := make([]float32, m.n)
	for _, t := range m.tensors {
		st, ok := f.Tensors[t.Name+suffix]
		if !ok {
			return nil, fmt.Errorf("tensor %s%s is missing", t.Name, suffix)
		}
		if !slices.Equal(st.Shape, t.Shape) {
			return nil, fmt.Errorf("tensor %s%s has shape %v; the model wants %v", t.Name, suffix, st.Shape, t.Shape)
		}
		x, err := st.Float32()
		if err != nil {
			return nil, fmt.Errorf("tensor %s%s: %w", t.Name, suffix, err)
		}
		copy(flat[t.Offset:], x)
	}
	return flat, nil
}

// LoadParams loads the parameters from a safetensors file of PyTorch
// state-dict names (F32 or F64).
func (m *Model) LoadParams(path string) error {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	flat, err := m.fromStateDict(f, "")
	if err != nil {
		return fmt.Errorf("trainer: %s: %w", path, err)
	}
	return m.SetParams(flat)
}

// SaveParams writes the parameters alone to a safetensors file.
func (m *Model) SaveParams(path string) error {
	params, err := m.ParamsHost()
	if err != nil {
		return err
	}
	if err := safetensors.WriteFile(path, m.stateDict(params, ""), map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	return nil
}

// ReadCheckpointConfig reads the model shape and the training config (nil
// if absent) of a checkpoint.
func ReadCheckpointConfig(dir string) (Config, *TrainConfig, error) {
	var cc checkpointConfig
	if err := readJSON(filepath.Join(dir, configFile), &cc); err != nil {
		return Config{}, nil, err
	}
	if cc.Format != checkpointFormat {
		return Config{}, nil, fmt.Errorf("trainer: checkpoint %s has format %d; this build reads %d", dir, cc.Format, checkpointFormat)
	}
	return cc.Model, cc.Train, cc.Model.Validate()
}

// LoadModel builds a model on be from a checkpoint's config and weights.
func LoadModel(dir string, be Backend) (*Model, error) {
	cfg, _, err := ReadCheckpointConfig(dir)
	if err != nil {
		return nil, err
	}
	m, err := NewModel(cfg, be)
	if err != nil {
		return nil, err
	}
	if err := m.LoadParams(filepath.Join(dir, modelFile)); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// LoadCheckpoint restores m (whose shape must match the checkpoint's) and
// opt (when not nil) from dir and returns the trainer state.
func LoadCheckpoint(dir string, m *Model, opt *AdamW) (TrainerState, error) {
	cfg, _, err := ReadCheckpointConfig(dir)
	if err != nil {
		return TrainerState{}, err
	}
	if cfg.Layers != m.cfg.Layers || cfg.Hidden != m.cfg.Hidden || cfg.Heads != m.cfg.Heads || cfg.Vocab != m.cfg.Vocab || cfg.MaxPos != m.cfg.MaxPos {
		return TrainerState{}, fmt.Errorf("trainer: checkpoint %s holds a model of shape %+v; this model is %+v", dir, cfg, m.cfg)
	}
	var st TrainerState
	if err := readJSON(filepath.Join(dir, stateFile), &st); err != nil {
		return TrainerState{}, err
	}
	if st.RNG != dropoutScheme {
		return TrainerState{}, fmt.Errorf("trainer: checkpoint %s uses dropout scheme %q; this build uses %q", dir, st.RNG, dropoutScheme)
	}
	if err := m.LoadParams(filepath.Join(dir, modelFile)); err != nil {
		return TrainerState{}, err
	}
	if opt != nil {
		f, err := safetensors.ReadFile(filepath.Join(dir, optimizerFile))
		if err != nil {
			return TrainerState{}, fmt.Errorf("trainer: %w", err)
		}
		mom, err := m.fromStateDict(f, ".exp_avg")
		if err != nil {
			return TrainerState{}, fmt.Errorf("trainer: %s: %w", dir, err)
		}
		vel, err := m.fromStateDict(f, ".exp_avg_sq")
		if err != nil {
			return TrainerState{}, fmt.Errorf("trainer: %s: %w", dir, err)
		}
		if err := opt.SetMoments(m.be, mom, vel); err != nil {
			return TrainerState{}, err
		}
	}
	return st, nil
}

// CheckpointDir is the name of the checkpoint of a step under out.
func CheckpointDir(out string, step int) string {
	return filepath.Join(out, fmt.Sprintf("%s%08d", checkpointPrefix, step))
}

// Checkpoints lists the complete checkpoints under out, oldest step first.
func Checkpoints(out string) ([]string, error) {
	ents, err := os.ReadDir(out)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("trainer: %w", err)
	}
	type ck struct {
		step int
		dir  string
	}
	var cks []ck
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, checkpointPrefix) {
			continue
		}
		step, err := strconv.Atoi(strings.TrimPrefix(name, checkpointPrefix))
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(out, name, stateFile)); err != nil {
			continue
		}
		cks = append(cks, ck{step, filepath.Join(out, name)})
	}
	slices.SortFunc(cks, func(a, b ck) int { return a.step - b.step })
	dirs := make([]string, len(cks))
	for i, c := range cks {
		dirs[i] = c.dir
	}
	return dirs, nil
}

// LatestCheckpoint returns the checkpoint of the highest step under out, or
// "" when there is none.
func LatestCheckpoint(out string) (string, error) {
	cks, err := Checkpoints(out)
	if err != nil || len(cks) == 0 {
		return "", err
	}
	return cks[len(cks)-1], nil
}

func writeJSON(path string, v any) (err error) {
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("trainer: encode %s: %w", filepath.Base(path), err)
	}
	fh, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	defer func() {
		if cerr := fh.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("trainer: %w", cerr)
		}
	}()
	if _, err := fh.Write(append(js, '\n')); err != nil {
		return fmt.Errorf("trainer: write %s: %w", path, err)
	}
	if err := fh.Sync(); err != nil {
		return fmt.Errorf("trainer: sync %s: %w", path, err)
	}
	return nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("trainer: %s: %w", path, err)
	}
	return nil
}

// syncDir flushes a directory's entries to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("trainer: sync %s: %w", dir, err)
	}
	return nil
}
