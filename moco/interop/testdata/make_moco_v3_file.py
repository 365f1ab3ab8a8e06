#!/usr/bin/python3
"""Writes the moco-v3 interop test files (run by hand; outputs are committed):

  moco_v3_zip.pth     facebookresearch/moco-v3's checkpoint layout for a ResNet (main_moco.py's
                      MoCo_ResNet under DistributedDataParallel): {"epoch", "arch",
                      "state_dict": module.base_encoder.* (backbone + projector fc.*),
                      module.momentum_encoder.*, module.predictor.*, "optimizer"}
  moco_v3_golden.pth  input (2, 3, 32, 32); the base encoder's pooled features, the query
                      output normalize(predictor(base_encoder(x))) and the key output
                      normalize(momentum_encoder(x)), all in eval mode

The heads follow moco-v3's _build_mlp (written here from its description): bias-free Linear
layers, BatchNorm1d + ReLU after each hidden one, the projector ending in
BatchNorm1d(affine=False). Backbone: make_torch_files.TinyResNet18 (widths 2, 4, 8, 16).
Usage: cd moco/interop/testdata && /usr/bin/python3 make_moco_v3_file.py
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

import make_torch_files as m

DIM = 8
HIDDEN = 12


def build_mlp(num_layers, input_dim, mlp_dim, output_dim, last_bn):
    layers = []
    for i in range(num_layers):
        d1 = input_dim if i == 0 else mlp_dim
        d2 = output_dim if i == num_layers - 1 else mlp_dim
        layers.append(nn.Linear(d1, d2, bias=False))
        if i < num_layers - 1:
            layers.append(nn.BatchNorm1d(d2))
            layers.append(nn.ReLU(inplace=True))
        elif last_bn:
            layers.append(nn.BatchNorm1d(d2, affine=False))
    return nn.Sequential(*layers)


class MoCoV3(nn.Module):
    def __init__(self, gen):
        super().__init__()
        self.base_encoder = m.TinyResNet18()
        self.momentum_encoder = m.TinyResNet18()
        width = self.base_encoder.fc[0].weight.shape[1]
        self.base_encoder.fc = build_mlp(2, width, HIDDEN, DIM, True)
        self.momentum_encoder.fc = build_mlp(2, width, HIDDEN, DIM, True)
        self.predictor = build_mlp(2, DIM, HIDDEN, DIM, False)
        with torch.no_grad():
            for part in (self.base_encoder, self.momentum_encoder, self.predictor):
                m.randomize(part, gen)


class Wrapper(nn.Module):  # DistributedDataParallel's "module." prefix
    def __init__(self, gen):
        super().__init__()
        self.module = MoCoV3(gen)


def main():
    gen = torch.Generator().manual_seed(3)
    model = Wrapper(gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.6, momentum=0.9)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen) * 0.01
    opt.step()
    torch.save({"epoch": 7, "arch": "resnet18", "state_dict": model.state_dict(),
                "optimizer": opt.state_dict()}, "moco_v3_zip.pth")

    v3 = model.module
    v3.eval()
    x = torch.randn(2, 3, 32, 32, generator=gen)
    with torch.no_grad():
        head, v3.base_encoder.fc = v3.base_encoder.fc, nn.Identity()
        features = v3.base_encoder(x)
        v3.base_encoder.fc = head
        query = F.normalize(v3.predictor(v3.base_encoder(x)), dim=1)
        key = F.normalize(v3.momentum_encoder(x), dim=1)
    torch.save({"input": x, "features": features, "query": query, "key": key},
               "moco_v3_golden.pth")


if __name__ == "__main__":
    main()
