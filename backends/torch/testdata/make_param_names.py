#!/usr/bin/python3
"""Generates the golden files for backends/torch/resnet_test.cc from torchvision.

Run from the repository root with Debian's Python (torch 1.13, torchvision 0.14):

    /usr/bin/python3 backends/torch/testdata/make_param_names.py

Writes into backends/torch/testdata/:

  <model>_names.txt   For torchvision resnet18 / resnet50 with MoCo's heads ("mlp": v2,
                      fc = Sequential(Linear(w, w), ReLU, Linear(w, 128)); "linear": v1,
                      fc = Linear(w, 128)): one line per named_parameters() entry, in order,
                      "param <name> [d0,d1,...]", then one line per named_buffers() entry,
                      "buffer <name> [dims]" ("[]" for a 0-d tensor).

  forward_<model>.bin Small networks built from torchvision's own ResNet / BasicBlock /
                      Bottleneck classes with every stage width scaled (the C++ width multiplier),
                      random weights and BN statistics, and their outputs on a fixed input.
                      Binary tensor list, little-endian:
                        magic b"MOCOTNS1", uint32 count, then per tensor:
                        uint32 name_len, name bytes (utf-8), uint8 dtype (0 float32, 1 float16,
                        2 int64), uint32 ndim, int64 dims[ndim], raw data (C order).
                      Weights and inputs are rounded to float16 before anything is computed and
                      stored as float16, so the C++ side loads exactly the values used here.
                      Entries: "state.<name>" for every parameter and buffer, "input",
                      "eval.output" / "eval.features" (model.eval()), "train.output" (model.train(),
                      plain BN = one split), "train.state.<name>" for a few BN buffers after that
                      training-mode forward, and "train.grad.<name>" for a few parameters: the
                      gradient of sum(train.output ** 2).
"""

import os
import struct

import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

OUT_DIR = os.path.dirname(os.path.abspath(__file__))


def moco_head(model, mlp):
    """Replaces model.fc by MoCo's head (official MoCo builder.py naming)."""
    if mlp:
        dim_mlp = model.fc.weight.shape[1]
        model.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(), model.fc)
    return model


def shape_str(t):
    return "[" + ",".join(str(d) for d in t.shape) + "]"


def write_names(arch, mlp):
    model = getattr(torchvision.models, arch)(num_classes=128)
    moco_head(model, mlp)
    lines = ["param %s %s" % (n, shape_str(p)) for n, p in model.named_parameters()]
    lines += ["buffer %s %s" % (n, shape_str(b)) for n, b in model.named_buffers()]
    path = os.path.join(OUT_DIR, "%s_%s_names.txt" % (arch, "mlp" if mlp else "linear"))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", path, len(lines), "entries")


class ScaledResNet(ResNet):
    """torchvision's ResNet with stage widths round(64*w), round(128*w), ... and MoCo's options.

    The blocks, their forward passes and torchvision's initialization are torchvision's own; only
    the stem (conv1/bn1/maxpool) and the channel counts are rebuilt, the way the C++ ResNet does.
    """

    def __init__(self, block, layers, width, in_channels, cifar_stem, dim, mlp):
        self._width = width
        self._first_layer = True
        super().__init__(block, layers, num_classes=dim)
        stem = max(1, round(64 * width))
        if cifar_stem:
            self.conv1 = nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.fc = nn.Linear(max(1, round(512 * width)) * block.expansion, dim)
        moco_head(self, mlp)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if self._first_layer:
            self.inplanes = max(1, round(64 * self._width))
            self._first_layer = False
        return super()._make_layer(block, max(1, round(planes * self._width)), blocks, stride,
                                   dilate)


def randomize(model, gen):
    """Random weights and BN statistics (so eval mode is not the identity), rounded to fp16."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(0.5 + torch.rand(module.weight.shape, generator=gen))
                module.bias.copy_(0.4 * torch.rand(module.bias.shape, generator=gen) - 0.2)
        # Convs keep torchvision's kaiming_normal_(fan_out) init, Linear layers torch's default.
        for p in model.parameters():
            p.copy_(p.half().float())
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_((0.2 * torch.randn(b.shape, generator=gen)).half().float())
            elif name.endswith("running_var"):
                b.copy_((0.5 + torch.rand(b.shape, generator=gen)).half().float())
            elif name.endswith("num_batches_tracked"):
                b.fill_(7)


def tensor_record(name, t, dtype):
    t = t.detach().contiguous()
    if dtype == 0:
        data = t.to(torch.float32).numpy().tobytes()
    elif dtype == 1:
        data = t.to(torch.float16).numpy().tobytes()
    else:
        data = t.to(torch.int64).numpy().tobytes()
    nb = name.encode("utf-8")
    head = struct.pack("<I", len(nb)) + nb + struct.pack("<BI", dtype, t.dim())
    head += b"".join(struct.pack("<q", d) for d in t.shape)
    return head + data


def write_forward(tag, model, input_shape, probe_buffers, probe_grads):
    gen = torch.Generator().manual_seed(1234)
    randomize(model, gen)
    x = torch.randn(input_shape, generator=gen).half().float()
    records = []
    for name, p in model.named_parameters():
        records.append(tensor_record("state." + name, p, 1))
    for name, b in model.named_buffers():
        records.append(tensor_record("state." + name, b, 2 if b.dtype == torch.int64 else 1))
    records.append(tensor_record("input", x, 1))

    model.eval()
    with torch.no_grad():
        out = model(x)
        feats = torch.flatten(model.avgpool(_backbone(model, x)), 1)
    records.append(tensor_record("eval.output", out, 0))
    records.append(tensor_record("eval.features", feats, 0))

    model.train()
    out = model(x)
    (out ** 2).sum().backward()
    records.append(tensor_record("train.output", out, 0))
    buffers = dict(model.named_buffers())
    params = dict(model.named_parameters())
    for name in probe_buffers:
        records.append(tensor_record("train.state." + name, buffers[name], 0))
    for name in probe_grads:
        records.append(tensor_record("train.grad." + name, params[name].grad, 0))

    path = os.path.join(OUT_DIR, "forward_%s.bin" % tag)
    with open(path, "wb") as f:
        f.write(b"MOCOTNS1" + struct.pack("<I", len(records)) + b"".join(records))
    print("wrote", path, os.path.getsize(path), "bytes; train output", tuple(out.shape),
          "abs max %.4f" % float(out.abs().max()))


def _backbone(model, x):
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer4(model.layer3(model.layer2(model.layer1(x))))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    for arch in ("resnet18", "resnet50"):
        for mlp in (True, False):
            write_names(arch, mlp)

    # resnet18, CIFAR stem, RGB, v2 MLP head, width 1/16 (4, 8, 16, 32 channels).
    torch.manual_seed(1)
    write_forward(
        "resnet18_cifar_w00625",
        ScaledResNet(BasicBlock, [2, 2, 2, 2], 0.0625, 3, True, 32, True), (2, 3, 32, 32),
        ["bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
         "layer4.1.bn2.running_var", "layer2.0.downsample.1.running_mean"],
        ["conv1.weight", "layer3.0.conv2.weight", "fc.0.weight", "fc.2.bias"])
    # resnet50, ImageNet stem, grayscale, v1 linear head, width 1/16 (4, 8, 16, 32 planes).
    torch.manual_seed(2)
    write_forward(
        "resnet50_imagenet_w00625",
        ScaledResNet(Bottleneck, [3, 4, 6, 3], 0.0625, 1, False, 16, False), (2, 1, 64, 64),
        ["bn1.running_mean", "layer1.0.bn3.running_var", "layer4.2.bn2.running_mean"],
        ["conv1.weight", "layer1.0.downsample.0.weight", "layer4.2.conv3.weight", "fc.weight"])


if __name__ == "__main__":
    main()
