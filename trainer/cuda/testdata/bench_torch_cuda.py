#!/usr/bin/env python3
"""PyTorch's training speed for the GLM of the CUDA benchmark, on the GPU:
the same model (trainer/testdata/glm_torch.py), configs and batches that
the Go test TestBenchInputs writes (GLMKIT_BENCH_DIR=DIR: DIR/<preset>/
config.json and batch.safetensors).

    bench_torch_cuda.py DIR [--presets base,large] [--attention eager,sdpa]
                        [--steps N] [--warmup N] [--out-dir RESULTS] [--device cuda|cpu]

One step is what the Go benchmark times: forward under bf16 autocast
(dropout as in the config, logits at the loss positions only), backward,
gradient-norm clipping at 1.0 and an AdamW update (β 0.9/0.98, ε 1e-6,
weight decay 0.1 except biases and LayerNorm) on float32 master weights.
Attention runs two ways:

    eager  glm_torch.py's: scores, GLM's mask, softmax, dropout, P·v
    sdpa   torch.nn.functional.scaled_dot_product_attention (PyTorch ≥ 2.1)
           with GLM's mask as a boolean attn_mask and the dropout inside
           (PyTorch picks its kernel: the memory-efficient one takes a
           mask, flash attention does not); before timing, one forward
           pass without dropout must give eager attention's loss within 1%

For every preset and attention it prints one JSON line, B·T positions per
second among the rest, and writes RESULTS/torch-<preset>-<attention>.json.
A case that fails (out of memory, an unsupported kernel) records its error
and the others still run.
"""

import argparse
import json
import math
import os
import sys
import time
import traceback

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "testdata"))
import glm_torch  # noqa: E402
from glm_torch import GLM, bench_optimizer, init_weights, load_batch  # noqa: E402

EAGER_FORWARD = glm_torch.Attention.forward


def sdpa_forward(self, x, mask):
    """glm_torch.Attention.forward through scaled_dot_product_attention."""
    b, t, c = x.shape
    q, k, v = self.query_key_value(x).split(c, dim=-1)  # three contiguous thirds
    q, k, v = [z.view(b, t, self.heads, self.hs).transpose(1, 2) for z in (q, k, v)]
    p = self.attn_dropout.p if self.training else 0.0
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask > 0.5, dropout_p=p, scale=1 / math.sqrt(self.hs))
    y = y.transpose(1, 2).reshape(b, t, c)
    return self.out_dropout(self.dense(y))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bench_dir")
    ap.add_argument("--presets", default="base,large")
    ap.add_argument("--attention", default="eager,sdpa")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out-dir")
    ap.add_argument("--device", default="cuda", help="cuda, or cpu for a dry run of the script")
    args = ap.parse_args()

    failed = 0
    for preset in args.presets.split(","):
        for attention in args.attention.split(","):
            result = {"preset": preset, "attention": attention, "torch": torch.__version__, "torch_cuda": torch.version.cuda}
            try:
                result.update(run(args, preset, attention))
            except Exception as e:  # report, and go on with the next case
                failed += 1
                result["error"] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
                traceback.print_exc()
            finally:
                glm_torch.Attention.forward = EAGER_FORWARD
                if args.device == "cuda" and torch.cuda.is_available():
                    torch.cuda.empty_cache()
            print(json.dumps(result), flush=True)
            if args.out_dir:
                path = os.path.join(args.out_dir, "torch-%s-%s.json" % (preset, attention))
                with open(path + ".tmp", "w") as f:
                    json.dump(result, f, indent=1)
                os.replace(path + ".tmp", path)
    sys.exit(1 if failed else 0)


def run(args, preset, attention):
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if attention == "sdpa":
        glm_torch.Attention.forward = sdpa_forward
    elif attention != "eager":
        raise ValueError("attention %r: want eager or sdpa" % attention)
    d = os.path.join(args.bench_dir, preset)
    cfg = json.load(open(os.path.join(d, "config.json")))["model"]
    torch.manual_seed(1)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    model = GLM(cfg).to(dev)
    init_weights(model)
    model.train()
    opt = bench_optimizer(model)
    inp, pos, bpos, sep, tgt, mask = [x.to(dev) for x in load_batch(os.path.join(d, "batch.safetensors"))]
    b, t = inp.shape

    parity = {}
    if attention == "sdpa":
        # the same loss as eager attention, without dropout, before timing
        model.eval()
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16):
            ls = float(model(inp, pos, bpos, sep, tgt, mask, gather=True))
            glm_torch.Attention.forward = EAGER_FORWARD
            le = float(model(inp, pos, bpos, sep, tgt, mask, gather=True))
            glm_torch.Attention.forward = sdpa_forward
        model.train()
        parity = {"eval_loss_sdpa": ls, "eval_loss_eager": le, "eval_loss_rel_diff": abs(ls - le) / abs(le)}
        if not abs(ls - le) <= 1e-2 * abs(le):
            raise RuntimeError("sdpa's loss %.6f differs from eager attention's %.6f by more than 1%%" % (ls, le))

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            loss = model(inp, pos, bpos, sep, tgt, mask, gather=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    t0 = time.perf_counter()
    for _ in range(args.warmup):
        step()
    sync()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    sync()
    dt = (time.perf_counter() - t0) / args.steps
    return {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "layers": cfg["layers"], "hidden": cfg["hidden"], "heads": cfg["heads"], "vocab": cfg["vocab"],
        "batch": b, "seq": t, "loss_positions": int(mask.sum()), "steps": args.steps, "warmup_s": warm,
        "step_ms": dt * 1e3, "tokens_per_s": b * t / dt, "loss": float(loss),
        "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else 0,
        **parity,
    }


if __name__ == "__main__":
    main()
