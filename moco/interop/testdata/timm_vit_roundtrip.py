#!/usr/bin/python3
"""timm interop round trip (interop_python_test.sh): `make DIR` writes DIR/timm_in.pth, a
timm-layout vit_micro backbone state_dict (8 px single-channel images, 4 px patches; random
weights from a fixed seed, plus a timm classifier `head.*` that a MoCo import must drop);
`check DIR` loads DIR/timm_out.pth (timm -> native -> timm through tools/convert) with
torch.load(weights_only=True) and checks that it holds exactly the backbone: the same names in
the same order, dtypes, shapes and bits.
"""
import sys
from collections import OrderedDict

import torch

D, DEPTH, MLP, P, TOKENS = 128, 4, 512, 4, 1 + (8 // 4) ** 2


def make_state():
    g = torch.Generator().manual_seed(16)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    sd = OrderedDict()
    sd["cls_token"] = r(1, 1, D)
    sd["pos_embed"] = r(1, TOKENS, D)
    sd["patch_embed.proj.weight"] = r(D, 1, P, P)
    sd["patch_embed.proj.bias"] = r(D)
    for i in range(DEPTH):
        b = f"blocks.{i}."
        for name, shape in [("norm1.weight", (D,)), ("norm1.bias", (D,)),
                            ("attn.qkv.weight", (3 * D, D)), ("attn.qkv.bias", (3 * D,)),
                            ("attn.proj.weight", (D, D)), ("attn.proj.bias", (D,)),
                            ("norm2.weight", (D,)), ("norm2.bias", (D,)),
                            ("mlp.fc1.weight", (MLP, D)), ("mlp.fc1.bias", (MLP,)),
                            ("mlp.fc2.weight", (D, MLP)), ("mlp.fc2.bias", (D,))]:
            sd[b + name] = r(*shape)
    sd["norm.weight"] = r(D)
    sd["norm.bias"] = r(D)
    return sd


def main():
    mode, out = sys.argv[1], sys.argv[2]
    expected = make_state()
    if mode == "make":
        with_classifier = OrderedDict(expected)
        with_classifier["head.weight"] = torch.zeros(1000, D)
        with_classifier["head.bias"] = torch.zeros(1000)
        torch.save(with_classifier, f"{out}/timm_in.pth")
        return
    got = torch.load(f"{out}/timm_out.pth", weights_only=True)
    problems = []
    if list(got) != list(expected):
        problems.append(f"names/order differ: {list(got)[:5]} ... vs {list(expected)[:5]} ...")
    for k, v in expected.items():
        if k in got and not (got[k].dtype == v.dtype and got[k].shape == v.shape and
                             torch.equal(got[k], v)):
            problems.append(f"{k}: {got[k].dtype} {tuple(got[k].shape)} differs")
    for p in problems:
        print("FAIL " + p)
    if problems:
        sys.exit(1)
    print(f"ok   timm -> native -> timm: {len(got)} tensors, names, order and bits kept")


if __name__ == "__main__":
    main()
