#!/usr/bin/python3
"""Generates backends/torch/testdata/forward_vit_micro.bin for backends/torch/vit_test.cc.

Run from the repository root with Debian's Python (torch 1.13):

    /usr/bin/python3 backends/torch/testdata/make_vit_golden.py

An independent ViT reference written here with torch.nn.functional only (timm is not in
Debian): patch conv, cls token, fixed 2-D sin-cos position embedding (moco-v3's
build_2d_sincos_position_embedding, 'ij' grid, temperature 10000), pre-norm blocks with
LayerNorm eps 1e-6, multi-head attention with softmax(q k^T / sqrt(Dh)), exact GELU, final
LayerNorm and the cls token as the feature. The C++ side builds its ViT from moco's ViTSpec,
loads "state.<name>" by timm's names (pos_embed included: it checks its own table against it),
and must reproduce "features" and "grad.<name>", the gradient of sum(features ** 2) for every
parameter. Weights and the input are float16-rounded (stored as float16, dtype 1) so both sides
compute from identical values; the format is make_param_names.py's MOCOTNS1 tensor list.
"""
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_param_names import tensor_record  # noqa: E402

# vit_micro at 16 px, 2 blocks to keep the file small: D 32, 4 heads, mlp 4x, patch 4, 1 channel.
IMAGE, PATCH, CHANNELS, DIM, DEPTH, HEADS, MLP = 16, 4, 1, 32, 2, 4, 128


def sincos_pos_embed(grid, dim):
    gh = torch.arange(grid, dtype=torch.float64)
    gw = torch.arange(grid, dtype=torch.float64)
    r, c = torch.meshgrid(gw, gh, indexing="ij")  # as vits.py: its "w" is the row
    quarter = dim // 4
    omega = 1.0 / (10000.0 ** (torch.arange(quarter, dtype=torch.float64) / quarter))
    out_r = r.flatten()[:, None] * omega[None, :]
    out_c = c.flatten()[:, None] * omega[None, :]
    pe = torch.cat([out_r.sin(), out_r.cos(), out_c.sin(), out_c.cos()], dim=1)
    return torch.cat([torch.zeros(1, dim, dtype=torch.float64), pe], dim=0)[None].float()


def make_state(gen):
    def rnd(*shape, scale):
        return (torch.randn(*shape, generator=gen) * scale).half().float()

    s = {
        "cls_token": rnd(1, 1, DIM, scale=0.5),
        "pos_embed": sincos_pos_embed(IMAGE // PATCH, DIM),
        "patch_embed.proj.weight": rnd(DIM, CHANNELS, PATCH, PATCH, scale=0.25),
        "patch_embed.proj.bias": rnd(DIM, scale=0.1),
    }
    for i in range(DEPTH):
        b = f"blocks.{i}."
        for norm in ("norm1", "norm2"):
            s[b + norm + ".weight"] = 1 + rnd(DIM, scale=0.1)
            s[b + norm + ".bias"] = rnd(DIM, scale=0.1)
        for name, (out, inp) in {"attn.qkv": (3 * DIM, DIM), "attn.proj": (DIM, DIM),
                                 "mlp.fc1": (MLP, DIM), "mlp.fc2": (DIM, MLP)}.items():
            s[b + name + ".weight"] = rnd(out, inp, scale=1 / math.sqrt(inp))
            s[b + name + ".bias"] = rnd(out, scale=0.1)
    s["norm.weight"] = 1 + rnd(DIM, scale=0.1)
    s["norm.bias"] = rnd(DIM, scale=0.1)
    # float16-exact values (1 + r is not, for the LayerNorm weights); pos_embed stays float32.
    return {k: v if k == "pos_embed" else v.half().float() for k, v in s.items()}


def features(s, x):
    t = F.conv2d(x, s["patch_embed.proj.weight"], s["patch_embed.proj.bias"], stride=PATCH)
    t = t.flatten(2).transpose(1, 2)
    t = torch.cat([s["cls_token"].expand(x.shape[0], -1, -1), t], dim=1) + s["pos_embed"]
    n, tokens, d = t.shape
    for i in range(DEPTH):
        b = f"blocks.{i}."
        h = F.layer_norm(t, (d,), s[b + "norm1.weight"], s[b + "norm1.bias"], eps=1e-6)
        qkv = F.linear(h, s[b + "attn.qkv.weight"], s[b + "attn.qkv.bias"])
        qkv = qkv.reshape(n, tokens, 3, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // HEADS), dim=-1)
        o = (a @ v).transpose(1, 2).reshape(n, tokens, d)
        t = t + F.linear(o, s[b + "attn.proj.weight"], s[b + "attn.proj.bias"])
        h = F.layer_norm(t, (d,), s[b + "norm2.weight"], s[b + "norm2.bias"], eps=1e-6)
        h = F.linear(F.gelu(F.linear(h, s[b + "mlp.fc1.weight"], s[b + "mlp.fc1.bias"])),
                     s[b + "mlp.fc2.weight"], s[b + "mlp.fc2.bias"])
        t = t + h
    return F.layer_norm(t, (d,), s["norm.weight"], s["norm.bias"], eps=1e-6)[:, 0]


def main():
    gen = torch.Generator().manual_seed(2104)
    state = make_state(gen)
    x = torch.randn(3, CHANNELS, IMAGE, IMAGE, generator=gen).half().float()
    params = {k: v.clone().requires_grad_(k != "pos_embed") for k, v in state.items()}
    out = features(params, x)
    out.pow(2).sum().backward()
    records = [tensor_record("state." + k, v, 0 if k == "pos_embed" else 1) for k, v in state.items()]
    records.append(tensor_record("input", x, 1))
    records.append(tensor_record("features", out, 0))
    records += [tensor_record("grad." + k, p.grad, 0) for k, p in params.items() if p.grad is not None]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "forward_vit_micro.bin")
    with open(path, "wb") as f:
        f.write(b"MOCOTNS1" + struct.pack("<I", len(records)) + b"".join(records))
    print(f"wrote {path}: {len(records)} tensors, features {tuple(out.shape)}")


if __name__ == "__main__":
    main()
