#!/usr/bin/env python3
"""PyTorch's training speed for the GLM of the CUDA benchmark, on the GPU:
the same model (trainer/testdata/glm_torch.py), config and batch that
BenchmarkTrainStep writes with GLMKIT_BENCH_DIR set.

    bench_torch_cuda.py CONFIG.json BATCH.safetensors [--steps N] [--warmup N] [--out RESULT.json]

One step is what the Go benchmark times: forward under bf16 autocast
(eager, dropout as in CONFIG, logits at the loss positions only), backward,
gradient-norm clipping at 1.0 and an AdamW update (β 0.9/0.98, ε 1e-6,
weight decay 0.1 except biases and LayerNorm) on float32 master weights.
Prints and writes B·T positions per second.
"""

import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "testdata"))
from glm_torch import GLM, load_batch, no_decay  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("batch")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out")
    ap.add_argument("--device", default="cuda", help="cuda, or cpu for a dry run of the script")
    args = ap.parse_args()

    result = {"torch": torch.__version__}
    try:
        result.update(run(args))
    except torch.cuda.OutOfMemoryError as e:  # report, do not crash the acceptance run
        result["error"] = "out of memory: " + str(e).splitlines()[0]
    print(json.dumps(result))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


def run(args):
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(1)
    cfg = json.load(open(args.config))["model"]
    model = GLM(cfg).to(dev)
    for name, p in model.named_parameters():  # GLM's init
        if name.endswith(".bias"):
            torch.nn.init.zeros_(p)
        elif "layernorm" in name:
            torch.nn.init.ones_(p)
        else:
            torch.nn.init.normal_(p, std=0.02)
    model.train()
    decay = [p for n, p in model.named_parameters() if not no_decay(n)]
    rest = [p for n, p in model.named_parameters() if no_decay(n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
        lr=1e-4, betas=(0.9, 0.98), eps=1e-6,
    )
    inp, pos, bpos, sep, tgt, mask = [x.to(dev) for x in load_batch(args.batch)]
    b, t = inp.shape

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            loss = model(inp, pos, bpos, sep, tgt, mask, gather=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    for _ in range(args.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    sync()
    dt = (time.perf_counter() - t0) / args.steps
    return {
        "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
        "layers": cfg["layers"], "hidden": cfg["hidden"], "heads": cfg["heads"], "vocab": cfg["vocab"],
        "batch": b, "seq": t, "steps": args.steps, "step_ms": dt * 1e3, "tokens_per_s": b * t / dt,
        "loss": float(loss),
        "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else 0,
    }


if __name__ == "__main__":
    main()
