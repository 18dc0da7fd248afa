package trainer

import (
	"fmt"
	"math"
	"strings"
)

// Config is the shape of a GLM model (glm-reference.md §5). Start from
// Preset, or fill every field and call Validate.
type Config struct {
	// Layers is the number of transformer blocks.
	Layers int `json:"layers"`
	// Hidden is the model width C; Heads must divide it (d_head = C/Heads).
	Hidden int `json:"hidden"`
	// Heads is the number of attention heads.
	Heads int `json:"heads"`
	// Vocab is the size of the (padded) vocabulary: the rows of the word
	// embedding and the width of the logits. It comes from the data
	// (30592 for BERT-uncased shards, 50304 for GPT-2 BPE).
	Vocab int `json:"vocab"`
	// MaxPos is GLM's max_position_embeddings: both position tables have
	// MaxPos+1 rows, so dim-1 and block positions may be 0..MaxPos.
	MaxPos int `json:"max_pos"`
	// HiddenDropout is the dropout after the embeddings, the attention
	// output projection and the MLP. GLM: 0.1.
	HiddenDropout float64 `json:"hidden_dropout"`
	// AttentionDropout is the dropout on the attention probabilities.
	// GLM: 0.1.
	AttentionDropout float64 `json:"attention_dropout"`
}

// PresetNames returns the names Preset accepts.
func PresetNames() []string { return []string{"tiny", "small", "base", "large"} }

// Preset returns a named model shape with the given vocabulary size:
//
//	tiny   2 layers,  hidden 64,   4 heads, max_pos 128  (tests)
//	small  4 layers,  hidden 256,  4 heads, max_pos 512  (trains on a few CPU cores)
//	base   12 layers, hidden 768,  12 heads, max_pos 512 (GLM-Base)
//	large  24 layers, hidden 1024, 16 heads, max_pos 512 (GLM-Large)
//
// Dropout is GLM's 0.1 everywhere.
func Preset(name string, vocab int) (Config, error) {
	c := Config{Vocab: vocab, HiddenDropout: 0.1, AttentionDropout: 0.1}
	switch name {
	case "tiny":
		c.Layers, c.Hidden, c.Heads, c.MaxPos = 2, 64, 4, 128
	case "small":
		c.Layers, c.Hidden, c.Heads, c.MaxPos = 4, 256, 4, 512
	case "base":
		c.Layers, c.Hidden, c.Heads, c.MaxPos = 12, 768, 12, 512
	case "large":
		c.Layers, c.Hidden, c.Heads, c.MaxPos = 24, 1024, 16, 512
	default:
		return Config{}, fmt.Errorf("trainer: unknown preset %q; want one of %s", name, strings.Join(PresetNames(), ", "))
	}
	return c, c.Validate()
}

// Bounds on a model's shape. Validate refuses a Config past them, and a
// checkpoint's config is checked with the same Validate before anything is
// allocated, so every model a program can build is one whose checkpoint
// loads back, and its layout is computed without overflow.
const (
	MaxLayers = 1 << 10
	MaxHidden = 1 << 16
	MaxVocab  = 1 << 24
	MaxPos    = 1 << 20
	MaxParams = 1 << 38
)

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	return nil
}

// validate is Validate without the package's prefix, for the checkpoint
// reader, which says where the config came from.
func (c Config) validate() error {
	switch {
	case c.Layers < 1 || c.Layers > MaxLayers:
		return fmt.Errorf("layers %d; want 1..%d", c.Layers, MaxLayers)
	case c.Hidden < 1 || c.Hidden > MaxHidden:
		return fmt.Errorf("hidden %d; want 1..%d", c.Hidden, MaxHidden)
	case c.Heads < 1 || c.Hidden%c.Heads != 0:
		return fmt.Errorf("hidden %d does not split into %d heads", c.Hidden, c.Heads)
	case c.Vocab < 1 || c.Vocab > MaxVocab:
		return fmt.Errorf("vocab %d; want 1..%d (take it from the shards' manifest)", c.Vocab, MaxVocab)
	case c.MaxPos < 1 || c.MaxPos > MaxPos:
		return fmt.Errorf("max_pos %d; want 1..%d", c.MaxPos, MaxPos)
	case !(c.HiddenDropout >= 0 && c.HiddenDropout < 1):
		return fmt.Errorf("hidden dropout %v; want 0 ≤ p < 1", c.HiddenDropout)
	case !(c.AttentionDropout >= 0 && c.AttentionDropout < 1):
		return fmt.Errorf("attention dropout %v; want 0 ≤ p < 1", c.AttentionDropout)
	}
	C, L, V, P := int64(c.Hidden), int64(c.Layers), int64(c.Vocab), int64(c.MaxPos+1)
	if n := V*C + 2*P*C + L*(12*C*C+13*C) + 2*C; n > MaxParams {
		return fmt.Errorf("%d parameters; at most %d", n, int64(MaxParams))
	}
	return nil
}

// TrainConfig configures Train. Start from DefaultTrainConfig.
type TrainConfig struct {
	// Steps is the number of optimizer steps to reach (a resumed run
	// continues up to the same total).
	Steps int `json:"steps"`
	// Accum is the number of micro-batches per step (gradient
	// accumulation). The loss of a step is the token mean over all of its
	// micro-batches' loss positions, as if they were one batch. Default 1.
	Accum int `json:"accum"`

	// LR is the peak learning rate. Default 4e-4 (GLM-Base).
	LR float64 `json:"lr"`
	// WarmupSteps is the length of the linear warmup from 0: step s
	// (0-based) uses LR·(s+1)/WarmupSteps while s < WarmupSteps.
	WarmupSteps int `json:"warmup_steps"`
	// DecaySteps is the step at which the cosine decay reaches
	// LR·MinLRRatio; the rate holds flat there afterwards. Default (0):
	// Steps.
	DecaySteps int `json:"decay_steps"`
	// MinLRRatio is the floor of the decay as a fraction of LR. Default
	// 0.05 (GLM-Base).
	MinLRRatio float64 `json:"min_lr_ratio"`
	// Beta1, Beta2 and Eps are AdamW's. Defaults 0.9, 0.98, 1e-6 (GLM).
	Beta1 float64 `json:"beta1"`
	Beta2 float64 `json:"beta2"`
	Eps   float64 `json:"eps"`
	// WeightDecay is decoupled and skips biases and LayerNorm parameters.
	// Default 0.1.
	WeightDecay float64 `json:"weight_decay"`
	// ClipNorm clips the global gradient norm; 0 turns clipping off.
	// Default 1.
	ClipNorm float64 `json:"clip_norm"`

	// Seed fixes the initial weights and every dropout mask (a mask is a
	// function of seed, step, micro-batch and site).
	Seed uint64 `json:"seed"`

	// Out is the output directory: metrics.jsonl and ckpt-NNNNNNNN/.
	Out string `json:"out"`
	// LogEvery writes a metrics line every N steps (and at the last step).
	// Default 1.
	LogEvery int `json:"log_every"`
	// EvalEvery evaluates on the eval source every N steps and at the last
	// step; 0 evaluates only at the end. Needs an eval source.
	EvalEvery int `json:"eval_every"`
	// EvalBatches caps the batches of one evaluation; 0 reads the eval
	// source to its end (io.EOF).
	EvalBatches int `json:"eval_batches"`
	// CheckpointEvery writes a checkpoint every N steps; 0 only at the end.
	CheckpointEvery int `json:"checkpoint_every"`
	// KeepCheckpoints keeps the newest N checkpoints and removes older ones;
	// 0 keeps all.
	KeepCheckpoints int `json:"keep_checkpoints"`
	// KeepWeights starts a fresh run from the model's current weights (for
	// example loaded with LoadParams) instead of initialising them from Seed.
	KeepWeights bool `json:"keep_weights,omitempty"`
	// Software names the versions of the program that trains ("glmkit",
	// "glmkit.revision", "go", …), recorded in every checkpoint.
	Software map[string]string `json:"software,omitempty"`
	// Run is what the program that trains records about the run in every
	// checkpoint, for itself to read back (glmtrain: its resolved flags,
	// compared on --resume, and the data's tokenizer, checked by eval).
	// Train does not read it.
	Run map[string]string `json:"run,omitempty"`

	// Resume is a checkpoint directory to continue from ("" starts fresh).
	// LatestCheckpoint(Out) finds the newest one. The run continues exactly
	// as an uninterrupted one when the rest of the config is the same
	// (Steps included: the decay follows it unless DecaySteps is set).
	Resume string `json:"-"`
}

// DefaultTrainConfig returns GLM's pretraining defaults (glm-reference.md
// §6.2) for a run of the given number of steps, with a warmup of 5% of it.
func DefaultTrainConfig(steps int) TrainConfig {
	return TrainConfig{
		Steps:       steps,
		Accum:       1,
		LR:          4e-4,
		WarmupSteps: int(math.Ceil(0.05 * float64(steps))),
		MinLRRatio:  0.05,
		Beta1:       0.9,
		Beta2:       0.98,
		Eps:         1e-6,
		WeightDecay: 0.1,
		ClipNorm:    1,
		Seed:        1234,
		LogEvery:    1,
	}
}

// Validate reports the first thing wrong with c.
func (c TrainConfig) Validate() error {
	switch {
	case c.Steps < 1:
		return fmt.Errorf("trainer: %d steps; want ≥ 1", c.Steps)
	case c.Accum < 1:
		return fmt.Errorf("trainer: accumulation over %d micro-batches; want ≥ 1", c.Accum)
	case !(c.LR >= 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("trainer: learning rate %v; want a finite number ≥ 0", c.LR)
	case c.WarmupSteps < 0:
		return fmt.Errorf("trainer: warmup %d steps; want ≥ 0", c.WarmupSteps)
	case c.DecaySteps < 0:
		return fmt.Errorf("trainer: decay %d steps; want ≥ 0", c.DecaySteps)
	case !(c.MinLRRatio >= 0 && c.MinLRRatio <= 1):
		return fmt.Errorf("trainer: min lr ratio %v; want 0..1", c.MinLRRatio)
	case !(c.Beta1 >= 0 && c.Beta1 < 1 && c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("trainer: adam betas %v, %v; want 0 ≤ β < 1", c.Beta1, c.Beta2)
	case !(c.Eps > 0) || math.IsInf(c.Eps, 0):
		return fmt.Errorf("trainer: adam eps %v; want a finite number > 0", c.Eps)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("trainer: weight decay %v; want a finite number ≥ 0", c.WeightDecay)
	case !(c.ClipNorm >= 0) || math.IsInf(c.ClipNorm, 0):
		return fmt.Errorf("trainer: clip norm %v; want a finite number ≥ 0 (0 = off)", c.ClipNorm)
	case c.Out == "":
		return fmt.Errorf("trainer: no output directory")
	}
	for _, n := range []struct {
		what string
		v    int
	}{{"log every", c.LogEvery}, {"eval every", c.EvalEvery}, {"eval batches", c.EvalBatches}, {"checkpoint every", c.CheckpointEvery}, {"keep checkpoints", c.KeepCheckpoints}} {
		if n.v < 0 {
			return fmt.Errorf("trainer: %s %d; want ≥ 0", n.what, n.v)
		}
	}
	return nil
}

// LRAt returns the learning rate of step s (0-based): linear warmup to c.LR
// over WarmupSteps, then cosine decay to c.LR·MinLRRatio at DecaySteps
// (default Steps), then flat.
func (c TrainConfig) LRAt(s int) float64 {
	if c.WarmupSteps > 0 && s < c.WarmupSteps {
		return c.LR * float64(s+1) / float64(c.WarmupSteps)
	}
	decay := c.DecaySteps
	if decay == 0 {
		decay = c.Steps
	}
	floor := c.LR * c.MinLRRatio
	if s >= decay || decay <= c.WarmupSteps {
		return floor
	}
	frac := float64(s-c.WarmupSteps) / float64(decay-c.WarmupSteps)
	return floor + (c.LR-floor)*0.5*(1+math.Cos(math.Pi*frac))
}
