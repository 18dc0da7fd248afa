"""GLM in PyTorch, written from glm-reference.md §5 (THUDM/GLM's GLMModel),
with the same parameter names as glmkit's safetensors checkpoints, and a
small reader/writer of the safetensors format (PyTorch 1.13 in Debian has no
safetensors package).

Used by torch_ref.py (gradient parity with the Go trainer) and
bench_torch.py (training speed). Runs under Debian's python3-torch 1.13.
"""

import json
import math
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# --------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, JSON header, data

_DTYPES = {
    "F64": (np.float64, torch.float64),
    "F32": (np.float32, torch.float32),
    "I64": (np.int64, torch.int64),
    "I32": (np.int32, torch.int32),
    "U8": (np.uint8, torch.uint8),
}
_NAMES = {t: name for name, (_, t) in _DTYPES.items()}


def load_safetensors(path):
    """Returns {name: tensor} (copies, so they are writable)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        npt, _ = _DTYPES[e["dtype"]]
        lo, hi = e["data_offsets"]
        arr = np.frombuffer(data[base + lo : base + hi], dtype=npt).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def save_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} in sorted name order."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        b = t.numpy().tobytes()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)


# --------------------------------------------------------------------------
# the model


def gelu(x):
    # GLM's gelu_impl: the tanh approximation
    return 0.5 * x * (1.0 + torch.tanh(0.7978845608028654 * x * (1.0 + 0.044715 * x * x)))


def build_mask(sep, t, device=None):
    """GLM's build_mask_matrix: lower triangle, plus every column j < sep.
    sep (B) → (B,1,T,T) with 1 where row i sees key j."""
    m = torch.ones(t, t, device=device).tril().unsqueeze(0).repeat(sep.shape[0], 1, 1)
    ids = torch.arange(t, device=device).view(1, 1, t)
    m = torch.where(ids < sep.view(-1, 1, 1), torch.ones_like(m), m)
    return m.unsqueeze(1)


class Attention(nn.Module):
    def __init__(self, hidden, heads, attn_dropout, hidden_dropout):
        super().__init__()
        self.heads, self.hs = heads, hidden // heads
        self.query_key_value = nn.Linear(hidden, 3 * hidden)
        self.dense = nn.Linear(hidden, hidden)
        self.attn_dropout = nn.Dropout(attn_dropout)
        self.out_dropout = nn.Dropout(hidden_dropout)

    def forward(self, x, mask):
        b, t, c = x.shape
        q, k, v = self.query_key_value(x).split(c, dim=-1)  # three contiguous thirds
        q, k, v = [z.view(b, t, self.heads, self.hs).transpose(1, 2) for z in (q, k, v)]
        scores = torch.matmul(q, k.transpose(-1, -2) / math.sqrt(self.hs))
        scores = scores * mask - 65504.0 * (1.0 - mask)
        probs = self.attn_dropout(F.softmax(scores, dim=-1))
        y = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, c)
        return self.out_dropout(self.dense(y))


class MLP(nn.Module):
    def __init__(self, hidden, hidden_dropout):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(hidden, 4 * hidden)
        self.dense_4h_to_h = nn.Linear(4 * hidden, hidden)
        self.dropout = nn.Dropout(hidden_dropout)

    def forward(self, x):
        return self.dropout(self.dense_4h_to_h(gelu(self.dense_h_to_4h(x))))


class Layer(nn.Module):
    def __init__(self, hidden, heads, attn_dropout, hidden_dropout):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(hidden, eps=1e-5)
        self.attention = Attention(hidden, heads, attn_dropout, hidden_dropout)
        self.post_attention_layernorm = nn.LayerNorm(hidden, eps=1e-5)
        self.mlp = MLP(hidden, hidden_dropout)

    def forward(self, x, mask):
        h = x + self.attention(self.input_layernorm(x), mask)
        return h + self.mlp(self.post_attention_layernorm(h))


class Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c, p = cfg["hidden"], cfg["max_pos"] + 1
        self.position_embeddings = nn.Embedding(p, c)
        self.block_position_embeddings = nn.Embedding(p, c)
        self.layers = nn.ModuleList(
            [Layer(c, cfg["heads"], cfg["attention_dropout"], cfg["hidden_dropout"]) for _ in range(cfg["layers"])]
        )
        self.final_layernorm = nn.LayerNorm(c, eps=1e-5)


class GLM(nn.Module):
    """GLMModel: names match glmkit's checkpoints
    (word_embeddings.weight, transformer.layers.0.attention.query_key_value.weight, ...)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.word_embeddings = nn.Embedding(cfg["vocab"], cfg["hidden"])
        self.transformer = Transformer(cfg)
        self.embedding_dropout = nn.Dropout(cfg["hidden_dropout"])

    def hidden(self, input_ids, position_ids, block_position_ids, sep):
        tr = self.transformer
        x = self.word_embeddings(input_ids) + tr.position_embeddings(position_ids)
        x = x + tr.block_position_embeddings(block_position_ids)
        x = self.embedding_dropout(x)
        mask = build_mask(sep, input_ids.shape[1], input_ids.device).to(x.dtype)
        for layer in tr.layers:
            x = layer(x, mask)
        return tr.final_layernorm(x)

    def forward(self, input_ids, position_ids, block_position_ids, sep, target_ids, loss_mask, gather=False):
        """Token-mean cross entropy over the loss positions. With gather, the
        logits are computed at the loss positions only (same loss)."""
        h = self.hidden(input_ids, position_ids, block_position_ids, sep)
        mask = loss_mask.to(h.dtype)
        if gather:
            sel = loss_mask.reshape(-1).bool()
            hs = h.reshape(-1, h.shape[-1])[sel]
            logits = hs @ self.word_embeddings.weight.t()
            ce = F.cross_entropy(logits, target_ids.reshape(-1)[sel].long(), reduction="sum")
            return ce / mask.sum().clamp(min=1)
        logits = h @ self.word_embeddings.weight.t()  # tied, no bias, full padded vocab
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target_ids.reshape(-1).long(), reduction="none")
        return (ce * mask.reshape(-1)).sum() / mask.sum().clamp(min=1)


def no_decay(name):
    """GLM skips weight decay for biases and every LayerNorm parameter."""
    return name.endswith(".bias") or "layernorm" in name


def init_weights(model):
    """GLM's init: biases 0, LayerNorm weights 1, every other weight N(0, 0.02²)."""
    for name, p in model.named_parameters():
        if name.endswith(".bias"):
            torch.nn.init.zeros_(p)
        elif "layernorm" in name:
            torch.nn.init.ones_(p)
        else:
            torch.nn.init.normal_(p, std=0.02)


def bench_optimizer(model):
    """The benchmarks' AdamW (β 0.9/0.98, ε 1e-6, lr 1e-4), weight decay 0.1 but for no_decay."""
    decay = [p for n, p in model.named_parameters() if not no_decay(n)]
    rest = [p for n, p in model.named_parameters() if no_decay(n)]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
        lr=1e-4, betas=(0.9, 0.98), eps=1e-6,
    )


def load_batch(path):
    b = load_safetensors(path)
    return (
        b["input_ids"].long(),
        b["position_ids"].long(),
        b["block_position_ids"].long(),
        b["sep"].long(),
        b["target_ids"].long(),
        b["loss_mask"],
    )
