"""End-to-end check of a ViT checkpoint exported with `tools/convert --to=timm`.

Loads the timm state_dict with torch.load(weights_only=True), runs its backbone with plain
PyTorch ops written here from timm's VisionTransformer definition (pre-norm blocks, LayerNorm
eps 1e-6, exact GELU, cls-token features; timm itself is not installed on these machines), and
reports weighted kNN top-1 (k 200, T 0.1, cosine) on Fashion-MNIST's full test split against
its training split: the protocol of eval/configs/moco_v3_vit_quickstart.pbtxt, so the figure
should match `bazel run //eval:knn` on the same checkpoint up to fp32 ties.

  /usr/bin/python3 moco/interop/testdata/timm_vit_knn.py /tmp/vit.pth [--heads 4]
"""
import argparse
import gzip
import math

import numpy as np
import torch
import torch.nn.functional as F

MEAN, STD = 0.2860, 0.3530  # the configs' Fashion-MNIST statistics


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def features(sd, x, heads):
    w = sd["patch_embed.proj.weight"]
    p = w.shape[-1]
    t = F.conv2d(x, w, sd["patch_embed.proj.bias"], stride=p).flatten(2).transpose(1, 2)
    t = torch.cat([sd["cls_token"].expand(x.shape[0], -1, -1), t], dim=1) + sd["pos_embed"]
    n, tokens, d = t.shape
    i = 0
    while f"blocks.{i}.norm1.weight" in sd:
        b = f"blocks.{i}."
        h = F.layer_norm(t, (d,), sd[b + "norm1.weight"], sd[b + "norm1.bias"], eps=1e-6)
        qkv = F.linear(h, sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"])
        qkv = qkv.reshape(n, tokens, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax(qkv[0] @ qkv[1].transpose(-2, -1) / math.sqrt(d // heads), dim=-1)
        t = t + F.linear((a @ qkv[2]).transpose(1, 2).reshape(n, tokens, d),
                         sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"])
        h = F.layer_norm(t, (d,), sd[b + "norm2.weight"], sd[b + "norm2.bias"], eps=1e-6)
        h = F.gelu(F.linear(h, sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"]))
        t = t + F.linear(h, sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"])
        i += 1
    return F.layer_norm(t, (d,), sd["norm.weight"], sd["norm.bias"], eps=1e-6)[:, 0]


def extract(sd, images, heads):
    out = []
    with torch.no_grad():
        for s in range(0, len(images), 500):
            x = torch.from_numpy(images[s:s + 500].astype(np.float32) / 255.0)[:, None]
            out.append(F.normalize(features(sd, (x - MEAN) / STD, heads), dim=1))
    return torch.cat(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--heads", type=int, default=4, help="vit_micro: 4")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()
    sd = torch.load(args.checkpoint, weights_only=True)
    print(f"{len(sd)} tensors, first {list(sd)[:3]}, last {list(sd)[-2:]}")
    train_x = read_idx(f"{args.data}/train-images-idx3-ubyte.gz")
    train_y = torch.from_numpy(read_idx(f"{args.data}/train-labels-idx1-ubyte.gz").astype(np.int64))
    test_x = read_idx(f"{args.data}/t10k-images-idx3-ubyte.gz")
    test_y = torch.from_numpy(read_idx(f"{args.data}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    bank = extract(sd, train_x, args.heads)
    queries = extract(sd, test_x, args.heads)
    correct = 0
    for s in range(0, len(queries), 500):
        sim, idx = (queries[s:s + 500] @ bank.T).topk(200, dim=1)
        votes = torch.zeros(sim.shape[0], 10).scatter_add_(1, train_y[idx], (sim / 0.1).exp())
        correct += (votes.argmax(1) == test_y[s:s + 500]).sum().item()
    print(f"kNN top-1 (k 200, T 0.1): {100.0 * correct / len(queries):.2f} %")


if __name__ == "__main__":
    main()
