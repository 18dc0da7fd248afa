package trainer_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/glmkit/glmkit/trainer"
	"github.com/glmkit/glmkit/trainer/cpu"
	"github.com/glmkit/glmkit/trainer/internal/batchtest"
	"github.com/glmkit/glmkit/trainer/loader"
	"github.com/glmkit/glmkit/trainer/safetensors"
)

const python = "/usr/bin/python3"

// needTorch skips unless Debian's python3-torch is importable.
func needTorch(t testing.TB) {
	t.Helper()
	if out, err := exec.Command(python, "-c", "import torch, numpy").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import torch (apt-get install -y python3-torch): %v: %s", python, err, out)
	}
}

// writeBatch writes b as safetensors for the Python side.
func writeBatch(t testing.TB, path string, b *loader.Batch) {
	t.Helper()
	if err := batchtest.WriteBatch(path, b); err != nil {
		t.Fatal(err)
	}
}

// TestTorchParity builds the same GLM in PyTorch from our safetensors
// weights, runs the same padded batch with its seps, and compares the loss
// (relative 1e-5) and every gradient (max |Δ| / max |torch| ≤ 1e-4), in
// float64 on both sides, then float32 on both sides with looser bounds.
func TestTorchParity(t *testing.T) {
	needTorch(t)
	cfg := trainer.Config{Layers: 2, Hidden: 32, Heads: 4, Vocab: 97, MaxPos: 64}
	dir := t.TempDir()

	// weights: GLM's init plus noise, so biases and LayerNorms matter; the
	// values are float32, which both sides read exactly
	m64 := newModel(t, cfg, newCPU[float64](t, cpu.Options{}), 7)
	host, err := m64.ParamsHost()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	for i := range host {
		host[i] += float32(0.05 * r.NormFloat64())
	}
	if err := m64.SetParams(host); err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(dir, "weights.safetensors")
	if err := m64.SaveParams(weights); err != nil {
		t.Fatal(err)
	}
	cfgJSON, _ := json.Marshal(map[string]any{"model": cfg})
	cfgPath := filepath.Join(dir, "config.json")
	os.WriteFile(cfgPath, cfgJSON, 0o644)

	// a padded batch: token and document rows of different lengths
	rows := []batchtest.Row{makeRow(r, 30, cfg.Vocab, false), makeRow(r, 18, cfg.Vocab, true), makeRow(r, 24, cfg.Vocab, false), makeRow(r, 9, cfg.Vocab, true)}
	b := padBatch(rows, 0)
	batchPath := filepath.Join(dir, "batch.safetensors")
	writeBatch(t, batchPath, &b)
	t.Logf("batch %d×%d, sep %v, %d loss positions", b.B, b.T, b.Sep, b.LossTokens())

	for _, prec := range []struct {
		name             string
		model            *trainer.Model
		lossTol, gradTol float64
	}{
		{"float64", m64, 1e-5, 1e-4},
		{"float32", nil, 1e-5, 2e-3},
	} {
		t.Run(prec.name, func(t *testing.T) {
			m := prec.model
			if m == nil {
				m = newModel(t, cfg, newCPU[float32](t, cpu.Options{}), 0)
				if err := m.LoadParams(weights); err != nil {
					t.Fatal(err)
				}
			}
			ref := filepath.Join(dir, "ref-"+prec.name+".safetensors")
			cmd := exec.Command(python, filepath.Join("testdata", "torch_ref.py"), cfgPath, weights, batchPath, ref, prec.name)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("torch_ref.py: %v\n%s", err, out)
			}
			want, err := safetensors.ReadFile(ref)
			if err != nil {
				t.Fatal(err)
			}

			loss, err := m.Forward(&b, trainer.Pass{})
			if err != nil {
				t.Fatal(err)
			}
			m.ZeroGrad()
			if err := m.Backward(1 / float64(loss.Tokens)); err != nil {
				t.Fatal(err)
			}
			wl, _ := want.Tensors["loss"].Float64()
			lossErr := math.Abs(loss.Mean()-wl[0]) / math.Abs(wl[0])
			t.Logf("loss: go %.15g torch %.15g, relative error %.3g", loss.Mean(), wl[0], lossErr)
			if lossErr > prec.lossTol {
				t.Errorf("loss relative error %.3g > %g", lossErr, prec.lossTol)
			}

			compareGradients(t, m, want, prec.gradTol)
		})
	}
}

// compareGradients compares m's gradients, tensor by tensor, with the
// reference's: max |Δ| / max |reference| ≤ tol.
func compareGradients(t *testing.T, m *trainer.Model, want safetensors.File, tol float64) {
	grads := make([]float64, m.NumParams())
	if err := m.Backend().DownloadFloat64(grads, m.Grads()); err != nil {
		t.Fatal(err)
	}
	var worst float64
	worstName := ""
	for _, ts := range m.Tensors() {
		wg, err := want.Tensors[ts.Name].Float64()
		if err != nil || len(wg) != ts.Size() {
			t.Fatalf("%s: reference gradient: %v (%d values)", ts.Name, err, len(wg))
		}
		var maxDiff, maxRef float64
		for i, w := range wg {
			maxDiff = max(maxDiff, math.Abs(grads[ts.Offset+i]-w))
			maxRef = max(maxRef, math.Abs(w))
		}
		rel := maxDiff / max(maxRef, 1e-30)
		if rel > worst {
			worst, worstName = rel, ts.Name
		}
		if rel > tol {
			t.Errorf("%s: gradient relative error %.3g > %g (max |Δ| %.3g, max |g| %.3g)", ts.Name, rel, tol, maxDiff, maxRef)
		}
	}
	t.Logf("gradients: worst relative error %.3g (%s) over %d tensors", worst, worstName, len(m.Tensors()))
}
