package trainer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/glmkit/glmkit/internal/atomicfile"
	"github.com/glmkit/glmkit/internal/strictjson"
	"github.com/glmkit/glmkit/internal/testhooks"
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
	// DataFingerprint identifies the training data (the BatchSource's
	// Fingerprint; "" for a source that has none); a resume on other data
	// fails.
	DataFingerprint string `json:"data_fingerprint,omitempty"`
	// Backend describes the backend that wrote the checkpoint.
	Backend string `json:"backend,omitempty"`
	// Files are the sha256 of the checkpoint's safetensors files, by name:
	// a flipped bit in a weight that stays finite would train or generate
	// on without a word. Checkpoints written before them have none.
	Files map[string]string `json:"files,omitempty"`
	// Checksum is the sha256 of the state's JSON without it (see seal):
	// the loader's position is opaque base64, so a damaged or edited one
	// would still parse, and the run would go on from elsewhere in its
	// data. Checkpoints written before it have none and are read as they
	// are.
	Checksum string `json:"checksum,omitempty"`
}

// seal is the checksum of st: the sha256 of its JSON with no checksum.
func (st TrainerState) seal() string {
	st.Checksum = ""
	b, _ := json.Marshal(st) // a TrainerState always encodes
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
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
	if err := os.MkdirAll(parent, 0o777); err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	tmp, err := atomicfile.Mkdir(parent, filepath.Base(dir))
	if err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	defer tmp.Release()
	defer os.RemoveAll(tmp.Path) // a no-op after the rename
	if err := writeCheckpoint(tmp.Path, m, opt, tc, st); err != nil {
		return err
	}
	testhooks.Crash("checkpoint-written", st.Step)
	// Move an existing checkpoint aside first (rename does not replace a
	// non-empty directory), under a temporary name that says what it is:
	// if a crash leaves it there, the next run puts it back.
	if _, err := os.Lstat(dir); err == nil {
		old := filepath.Join(parent, atomicfile.Name(oldPrefix+filepath.Base(dir)))
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("trainer: checkpoint: %w", err)
		}
		testhooks.Crash("checkpoint-aside", st.Step)
		defer os.RemoveAll(old)
	}
	if err := os.Rename(tmp.Path, dir); err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	if err := atomicfile.SyncDir(parent); err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	return nil
}

// oldPrefix marks a checkpoint moved aside while it is replaced.
const oldPrefix = "old-"

func writeCheckpoint(tmp string, m *Model, opt *AdamW, tc *TrainConfig, st TrainerState) error {
	params, err := m.ParamsHost()
	if err != nil {
		return err
	}
	st.Files = map[string]string{}
	if st.Files[modelFile], err = safetensors.WriteFileSum(filepath.Join(tmp, modelFile), m.stateDict(params, ""), map[string]string{"format": "pt"}); err != nil {
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
		if st.Files[optimizerFile], err = safetensors.WriteFileSum(filepath.Join(tmp, optimizerFile), ts, map[string]string{"format": "pt", "optimizer": "adamw"}); err != nil {
			return fmt.Errorf("trainer: checkpoint: %w", err)
		}
	}
	if err := writeJSON(filepath.Join(tmp, configFile), checkpointConfig{Format: checkpointFormat, Model: m.cfg, Train: tc}); err != nil {
		return err
	}
	st.RNG = dropoutScheme
	st.Backend = m.be.Name()
	st.Checksum = st.seal()
	if err := writeJSON(filepath.Join(tmp, stateFile), st); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(tmp); err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	return nil
}

// CleanCheckpointTemps removes the temporary checkpoint directories that a
// killed run left in out (only glmkit temporaries whose writer is gone),
// and puts back a checkpoint that was moved aside to be replaced when its
// replacement never arrived. It returns what it removed or restored.
func CleanCheckpointTemps(out string) ([]string, error) {
	var done []string
	var restoreErr error
	_, err := atomicfile.RemoveStale(out, func(name, target string) bool {
		orig, ok := strings.CutPrefix(target, oldPrefix)
		if !ok || !isCheckpointName(orig) {
			done = append(done, filepath.Join(out, name))
			return false
		}
		if _, err := os.Lstat(filepath.Join(out, orig)); errors.Is(err, os.ErrNotExist) {
			if err := os.Rename(filepath.Join(out, name), filepath.Join(out, orig)); err != nil {
				restoreErr = fmt.Errorf("trainer: restoring %s: %w", orig, err)
			}
			done = append(done, filepath.Join(out, orig)+" (restored)")
			return true
		}
		done = append(done, filepath.Join(out, name))
		return false
	})
	if err == nil {
		err = restoreErr
	}
	return done, err
}

func isCheckpointName(name string) bool {
	step, ok := strings.CutPrefix(name, checkpointPrefix)
	if !ok || len(step) < 8 {
		return false
	}
	n, err := strconv.Atoi(step)
	return err == nil && n >= 0 && fmt.Sprintf("%08d", n) == step
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
		// A NaN or an infinity (a run that diverged, a damaged or edited
		// file, a float64 beyond float32) would train or generate garbage
		// without a word; a second moment must not be negative.
		for i, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || suffix == ".exp_avg_sq" && v < 0 {
				return nil, fmt.Errorf("tensor %s%s holds %v at element %d; a checkpoint's numbers are finite (and second moments ≥ 0): the run diverged before it was saved, or the file was damaged or edited", t.Name, suffix, v, i)
			}
		}
		copy(flat[t.Offset:], x)
	}
	return flat, nil
}

// LoadParams loads the parameters from a safetensors file of PyTorch
// state-dict names (F32 or F64).
func (m *Model) LoadParams(path string) error { return m.loadParams(path, "") }

// loadParams is LoadParams of a file whose sha256 must be sum ("": any).
func (m *Model) loadParams(path, sum string) error {
	if err := m.checkFile(path, ""); err != nil {
		return err
	}
	f, err := readSafetensors(path, sum)
	if err != nil {
		return err
	}
	flat, err := m.fromStateDict(f, "")
	if err != nil {
		return fmt.Errorf("trainer: %s: %w", path, err)
	}
	return m.SetParams(flat)
}

// readSafetensors reads a checkpoint's safetensors file, which must have
// the sha256 sum its state recorded ("" for a state that has none).
func readSafetensors(path, sum string) (safetensors.File, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("trainer: %w", err)
	}
	if sum != "" && f.SHA256 != sum {
		return f, fmt.Errorf("trainer: %s has sha256 %.16s…; its checkpoint's trainer_state.json recorded %.16s…: the file was damaged or replaced", path, f.SHA256, sum)
	}
	return f, nil
}

// checkFile reads only the header of a safetensors file and checks that it
// holds exactly this model's tensors (with suffix) and shapes, before the
// file is read whole.
func (m *Model) checkFile(path string, suffixes ...string) error {
	return checkTensors(path, m.tensors, suffixes...)
}

func checkTensors(path string, tensors []Tensor, suffixes ...string) error {
	if err := regularFile(path); err != nil {
		return err
	}
	h, err := safetensors.ReadHeader(path)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	if want := len(tensors) * len(suffixes); len(h.Tensors) != want {
		return fmt.Errorf("trainer: %s holds %d tensors; the model of its config.json has %d", path, len(h.Tensors), want)
	}
	for _, sfx := range suffixes {
		for _, t := range tensors {
			e, ok := h.Tensors[t.Name+sfx]
			if !ok {
				return fmt.Errorf("trainer: %s: tensor %s%s is missing", path, t.Name, sfx)
			}
			if !slices.Equal(e.Shape, t.Shape) {
				return fmt.Errorf("trainer: %s: tensor %s%s has shape %v; the model of its config.json wants %v", path, t.Name, sfx, e.Shape, t.Shape)
			}
			if e.DType != safetensors.F32 && e.DType != safetensors.F64 {
				return fmt.Errorf("trainer: %s: tensor %s%s is %s, not a float tensor", path, t.Name, sfx, e.DType)
			}
		}
	}
	return nil
}

// regularFile refuses a path that is not a regular file (a link could lead
// out of the checkpoint directory).
func regularFile(path string) error {
	st, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("trainer: %s is not a regular file (%s)", path, st.Mode().Type())
	}
	return nil
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
// if absent) of a checkpoint, and checks them.
func ReadCheckpointConfig(dir string) (Config, *TrainConfig, error) {
	path := filepath.Join(dir, configFile)
	var cc checkpointConfig
	if err := readJSON(path, &cc); err != nil {
		return Config{}, nil, err
	}
	if cc.Format != checkpointFormat {
		return Config{}, nil, fmt.Errorf("trainer: checkpoint %s has format %d; this build reads %d", dir, cc.Format, checkpointFormat)
	}
	if err := cc.Model.validate(); err != nil { // the shape's bounds first: nothing is allocated before
		return Config{}, nil, fmt.Errorf("trainer: %s: model: %w", path, err)
	}
	if cc.Train != nil {
		tc := *cc.Train
		tc.Out = "-" // not recorded as the run's
		if err := tc.Validate(); err != nil {
			return Config{}, nil, fmt.Errorf("trainer: %s: train: %w", path, err)
		}
	}
	return cc.Model, cc.Train, nil
}

// LoadModel builds a model on be from a checkpoint's config and weights,
// after checking the weights file holds exactly that model's tensors.
func LoadModel(dir string, be Backend) (*Model, error) {
	cfg, _, err := ReadCheckpointConfig(dir)
	if err != nil {
		return nil, err
	}
	if err := checkTensors(filepath.Join(dir, modelFile), Layout(cfg), ""); err != nil {
		return nil, err
	}
	// A checkpoint's state names the sha256 of its weights; a directory of
	// weights and config alone (no trainer_state.json) has none to check.
	var sum string
	if _, err := os.Lstat(filepath.Join(dir, stateFile)); err == nil {
		st, err := readState(dir)
		if err != nil {
			return nil, err
		}
		sum = st.Files[modelFile]
	}
	m, err := NewModel(cfg, be)
	if err != nil {
		return nil, err
	}
	if err := m.loadParams(filepath.Join(dir, modelFile), sum); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// readState reads and checks a checkpoint's trainer_state.json.
func readState(dir string) (TrainerState, error) {
	path := filepath.Join(dir, stateFile)
	var st TrainerState
	if err := readJSON(path, &st); err != nil {
		return TrainerState{}, err
	}
	switch {
	case st.Checksum != "" && st.Checksum != st.seal():
		return st, fmt.Errorf("trainer: %s: checksum %.16s… does not match its contents (%.16s…): the file was damaged or edited", path, st.Checksum, st.seal())
	case st.Step < 0 || st.Step > 1<<40:
		return st, fmt.Errorf("trainer: %s: step %d is out of range", path, st.Step)
	case st.Tokens < 0:
		return st, fmt.Errorf("trainer: %s: tokens %d is negative", path, st.Tokens)
	case len(st.LoaderState) > 1<<20 || len(st.DataFingerprint) > 1<<10 || len(st.Backend) > 1<<10 || len(st.Files) > 2:
		return st, fmt.Errorf("trainer: %s: a field is far too long", path)
	case st.RNG != dropoutScheme:
		return st, fmt.Errorf("trainer: checkpoint %s uses dropout scheme %q; this build uses %q", dir, st.RNG, dropoutScheme)
	}
	if name := filepath.Base(filepath.Clean(dir)); isCheckpointName(name) && name != filepath.Base(CheckpointDir("", st.Step)) {
		return st, fmt.Errorf("trainer: %s: step %d, but the checkpoint is %s", path, st.Step, name)
	}
	return st, nil
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
	st, err := readState(dir)
	if err != nil {
		return TrainerState{}, err
	}
	if err := m.loadParams(filepath.Join(dir, modelFile), st.Files[modelFile]); err != nil {
		return TrainerState{}, err
	}
	if opt != nil {
		path := filepath.Join(dir, optimizerFile)
		if err := m.checkFile(path, ".exp_avg", ".exp_avg_sq"); err != nil {
			return TrainerState{}, err
		}
		f, err := readSafetensors(path, st.Files[optimizerFile])
		if err != nil {
			return TrainerState{}, err
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
		if !e.IsDir() || !isCheckpointName(name) {
			continue // links are not followed: a checkpoint is a directory of out
		}
		step, _ := strconv.Atoi(strings.TrimPrefix(name, checkpointPrefix))
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

// writeJSON writes v, indented, as the file path of a checkpoint being
// made.
func writeJSON(path string, v any) error {
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("trainer: encode %s: %w", filepath.Base(path), err)
	}
	if err := atomicfile.Write(path, append(js, '\n')); err != nil {
		return fmt.Errorf("trainer: write %s: %w", path, err)
	}
	return nil
}

// readJSON reads a small JSON file of a checkpoint strictly: a regular
// file, one value, no unknown fields.
func readJSON(path string, v any) error {
	if err := regularFile(path); err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	if len(data) > 16<<20 {
		return fmt.Errorf("trainer: %s: %d bytes is too big", path, len(data))
	}
	if err := strictjson.Decode(data, v); err != nil {
		return fmt.Errorf("trainer: %s: %w", path, err)
	}
	return nil
}
