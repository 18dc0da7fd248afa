#!/usr/bin/python3
"""Reference forward/backward of GLM in PyTorch for the Go parity test
(trainer/torch_test.go).

    torch_ref.py CONFIG.json WEIGHTS.safetensors BATCH.safetensors OUT.safetensors {float64|float32}

Builds the model of CONFIG (glmkit's config.json "model" object) with the
weights of WEIGHTS, runs the padded batch of BATCH (input_ids, target_ids,
loss_mask, position_ids, block_position_ids: (B,T); sep: (B)) without
dropout, and writes to OUT the loss ("loss", shape []) and the gradient of
every parameter under its name, in float64.
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from glm_torch import GLM, load_batch, load_safetensors, save_safetensors  # noqa: E402


def main():
    cfg_path, weights_path, batch_path, out_path, dtype = sys.argv[1:6]
    dt = {"float64": torch.float64, "float32": torch.float32}[dtype]
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = json.load(open(cfg_path))
    cfg = cfg.get("model", cfg)
    cfg["hidden_dropout"] = cfg["attention_dropout"] = 0.0
    model = GLM(cfg).to(dt)
    weights = load_safetensors(weights_path)
    missing, unexpected = model.load_state_dict({k: v.to(dt) for k, v in weights.items()}, strict=True)
    assert not missing and not unexpected, (missing, unexpected)
    model.eval()

    inp, pos, bpos, sep, tgt, mask = load_batch(batch_path)
    loss = model(inp, pos, bpos, sep, tgt, mask)
    loss.backward()
    out = {"loss": loss.detach().to(torch.float64).reshape([])}
    for name, p in model.named_parameters():
        out[name] = p.grad.detach().to(torch.float64)
    save_safetensors(out_path, out)


if __name__ == "__main__":
    main()
