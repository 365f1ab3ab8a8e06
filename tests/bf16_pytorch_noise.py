"""How far PyTorch's own bf16 autocast lands from fp32 on the encoder of
tests/bf16_conformance_test.cc (resnet18, CIFAR stem, width 0.25, v2 head to 32-d, a random
upstream gradient on the L2-normalized output), as relative L2 differences of the output and of
all parameter gradients taken as one vector. The test's gradient bound comes from these numbers:

    /usr/bin/python3 tests/bf16_pytorch_noise.py
    batch 8 size 16 bn_splits 2: output 0.027 gradients 0.326   (measured 2026-12-03, torch 1.13)
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
import moco_step_pytorch as m  # noqa: E402

torch.manual_seed(0)
for batch, size, splits in [(8, 16, 2), (8, 16, 1), (32, 16, 1), (64, 32, 1), (32, 32, 2)]:
    net = m.ResNet18(0.25, 3, True, 32, True, splits).train()
    x = torch.randn(batch, 3, size, size)
    g = torch.randn(batch, 32)

    def run(bf16):
        net.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            h = net(x)
        y = F.normalize(h.float(), dim=1)
        (y * g).sum().backward()
        return y.detach(), torch.cat([p.grad.flatten() for p in net.parameters()])

    y32, g32 = run(False)
    y16, g16 = run(True)
    print(f"batch {batch} size {size} bn_splits {splits}: "
          f"output {((y16 - y32).norm() / y32.norm()).item():.3f} "
          f"gradients {((g16 - g32).norm() / g32.norm()).item():.3f}")
