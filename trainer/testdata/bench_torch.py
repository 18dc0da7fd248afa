#!/usr/bin/python3
"""Training speed of GLM in PyTorch on the CPU, for comparison with the Go
trainer's BenchmarkTrainStep (see bench_vs_torch.sh).

    bench_torch.py CONFIG.json BATCH.safetensors [--threads N] [--steps N] [--warmup N] [--full-logits]

One step is what the Go benchmark times: forward (dropout as in CONFIG),
backward, gradient-norm clipping at 1.0 and an AdamW update (β 0.9/0.98,
ε 1e-6, weight decay 0.1 except biases and LayerNorm), float32. Like the
Go trainer, the logits are computed at the loss positions only unless
--full-logits is given. Prints B·T positions per second.
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from glm_torch import GLM, bench_optimizer, init_weights, load_batch  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("batch")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--full-logits", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    cfg = json.load(open(args.config))["model"]
    model = GLM(cfg)
    init_weights(model)
    model.train()
    opt = bench_optimizer(model)
    inp, pos, bpos, sep, tgt, mask = load_batch(args.batch)
    b, t = inp.shape

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(inp, pos, bpos, sep, tgt, mask, gather=not args.full_logits)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    dt = (time.perf_counter() - t0) / args.steps
    print(
        f"pytorch {torch.__version__}: {cfg['layers']} layers, hidden {cfg['hidden']}, {cfg['heads']} heads, "
        f"vocab {cfg['vocab']}; batch {b}x{t}; {args.threads} threads; "
        f"{'full' if args.full_logits else 'loss-position'} logits: "
        f"{dt * 1e3:.1f} ms/step, {b * t / dt:.0f} tokens/s"
    )


if __name__ == "__main__":
    main()
