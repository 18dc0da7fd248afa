package trainer

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestLRSchedule(t *testing.T) {
	c := DefaultTrainConfig(100)
	c.LR, c.WarmupSteps, c.DecaySteps, c.MinLRRatio = 1, 10, 60, 0.1
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	for _, tc := range []struct {
		step int
		want float64
	}{
		{0, 0.1}, {4, 0.5}, {9, 1}, // warmup: (s+1)/10
		{10, 1}, // decay starts at the peak
		{35, 0.1 + 0.9*0.5*(1+math.Cos(math.Pi*0.5))}, // half way
		{60, 0.1}, {99, 0.1}, // held at the floor
	} {
		if got := c.LRAt(tc.step); !near(got, tc.want) {
			t.Errorf("LRAt(%d) = %v; want %v", tc.step, got, tc.want)
		}
	}
	for s := 10; s < 60; s++ {
		if c.LRAt(s+1) > c.LRAt(s) {
			t.Errorf("lr rises from step %d to %d", s, s+1)
		}
	}
	c.DecaySteps = 0 // decays over Steps
	if got := c.LRAt(99); !(got > 0.1 && got < 0.11) {
		t.Errorf("LRAt(99) over 100 steps = %v", got)
	}
	c.WarmupSteps = 0
	if got := c.LRAt(0); !near(got, 1) {
		t.Errorf("LRAt(0) without warmup = %v; want 1", got)
	}
}

func TestPresets(t *testing.T) {
	for _, name := range PresetNames() {
		c, err := Preset(name, 30592)
		if err != nil {
			t.Fatal(err)
		}
		if c.Hidden/c.Heads != 64 && name != "tiny" {
			t.Errorf("%s: d_head %d; GLM uses 64", name, c.Hidden/c.Heads)
		}
		t.Logf("%-5s %d layers, hidden %d, heads %d: %.1fM parameters", name, c.Layers, c.Hidden, c.Heads, float64(c.NumParams())/1e6)
	}
	base, _ := Preset("base", 30592)
	// GLM-Base: 110M with the two 513-row position tables
	if n := base.NumParams(); n < 108e6 || n > 112e6 {
		t.Errorf("base has %d parameters; GLM-Base has about 110M", n)
	}
	if _, err := Preset("huge", 10); err == nil {
		t.Error("unknown preset accepted")
	}
}

// Validate applies the bounds a checkpoint's config is read back with, so a
// model that trains is one whose checkpoint loads (a 1025-layer or
// 2^20+1-position model trained, then eval and --resume refused it).
func TestConfigBounds(t *testing.T) {
	tiny, err := Preset("tiny", 30592)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		edit func(*Config)
		want string // "" : valid
	}{
		{func(c *Config) { c.Layers = MaxLayers }, ""},
		{func(c *Config) { c.Layers = MaxLayers + 1 }, "layers 1025; want 1..1024"},
		{func(c *Config) { c.Layers = 0 }, "layers 0; want 1..1024"},
		{func(c *Config) { c.Hidden, c.Heads = 4, 1; c.MaxPos = MaxPos }, ""},
		{func(c *Config) { c.Hidden, c.Heads = 4, 1; c.MaxPos = MaxPos + 1 }, "max_pos 1048577; want 1..1048576"},
		{func(c *Config) { c.Hidden, c.Heads = MaxHidden+4, 4 }, "hidden 65540; want 1..65536"},
		{func(c *Config) { c.Vocab = MaxVocab + 1 }, "vocab 16777217; want 1..16777216"},
		{func(c *Config) { c.Heads = 3 }, "hidden 64 does not split into 3 heads"},
		{func(c *Config) { c.Layers, c.Hidden, c.Heads = MaxLayers, MaxHidden, 1 }, "parameters; at most 274877906944"},
		{func(c *Config) { c.HiddenDropout = math.NaN() }, "hidden dropout NaN; want 0 ≤ p < 1"},
	} {
		c := tiny
		tc.edit(&c)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v; want valid", c, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: %v; want an error saying %q", c, err, tc.want)
		}
	}
}

// A weight decay, clip norm or eps that is not finite is refused: +Inf
// clipping trained, then failed to write config.json ("json: unsupported
// value"), and +Inf decay made every weight NaN at step 1.
func TestTrainConfigFinite(t *testing.T) {
	for _, tc := range []struct {
		edit func(*TrainConfig)
		want string
	}{
		{func(c *TrainConfig) { c.ClipNorm = math.Inf(1) }, "clip norm +Inf"},
		{func(c *TrainConfig) { c.ClipNorm = math.NaN() }, "clip norm NaN"},
		{func(c *TrainConfig) { c.WeightDecay = math.Inf(1) }, "weight decay +Inf"},
		{func(c *TrainConfig) { c.WeightDecay = -0.1 }, "weight decay -0.1"},
		{func(c *TrainConfig) { c.Eps = math.Inf(1) }, "adam eps +Inf"},
		{func(c *TrainConfig) { c.LR = math.Inf(1) }, "learning rate +Inf"},
	} {
		c := DefaultTrainConfig(10)
		c.Out = "-"
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v; want an error saying %q", err, tc.want)
		}
	}
	c := DefaultTrainConfig(10)
	c.Out, c.ClipNorm, c.WeightDecay = "-", 0, 0 // 0: no clipping, no decay
	if err := c.Validate(); err != nil {
		t.Errorf("clip 0, weight decay 0: %v", err)
	}
}

func TestLayout(t *testing.T) {
	c := Config{Layers: 2, Hidden: 8, Heads: 2, Vocab: 11, MaxPos: 5}
	ts := Layout(c)
	off, decayDone := 0, false
	seen := map[string]bool{}
	for _, tn := range ts {
		if tn.Offset != off {
			t.Errorf("%s at %d; want %d", tn.Name, tn.Offset, off)
		}
		off += tn.Size()
		if seen[tn.Name] {
			t.Errorf("duplicate %s", tn.Name)
		}
		seen[tn.Name] = true
		if !tn.Decay {
			decayDone = true
		} else if decayDone {
			t.Errorf("%s takes weight decay after a tensor that does not", tn.Name)
		}
		if tn.Decay && (strings.HasSuffix(tn.Name, ".bias") || strings.Contains(tn.Name, "layernorm")) {
			t.Errorf("%s should not take weight decay", tn.Name)
		}
	}
	if off != c.NumParams() {
		t.Errorf("layout covers %d of %d parameters", off, c.NumParams())
	}
}

// A step's error names the step once and the trainer's prefix once, and
// still unwraps to its cause.
func TestStepError(t *testing.T) {
	cause := errors.New("trainer: allocate activations: too big")
	err := error(stepError{7, fmt.Errorf("trainer: forward: %w", cause)})
	if got, want := err.Error(), "trainer: step 7: forward: trainer: allocate activations: too big"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, cause) {
		t.Error("the step error does not unwrap to its cause")
	}
	if got := (stepError{0, errors.New("cpu: out of memory")}).Error(); got != "trainer: step 0: cpu: out of memory" {
		t.Errorf("Error() = %q", got)
	}
}
