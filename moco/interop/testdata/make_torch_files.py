#!/usr/bin/python3
"""Writes the interop test files (run by hand; outputs are committed):

  moco_v2_zip.pth        official MoCo v2 layout, torch.save zip format, with SGD state
  moco_v2_legacy.pth.tar official layout, legacy (pre-1.6) format, no optimizer (released-style)
  moco_v2_d2.pkl         the official detectron2 converter's output for moco_v2_zip.pth
  dtypes_zip.pth, dtypes_legacy.pth   float16/bfloat16/float64/int64, strided and offset views
  golden.pth             input (2, 3, 32, 32), the query encoder's pooled features and
                         L2-normalized head output (torchvision forward, eval mode)
  dtypes_deflated.pth    dtypes_zip.pth re-packed with deflate-compressed entries
  evil.pkl               a pickle that calls os.system (must be refused)
  moco_v1_gray_legacy.pth.tar  released-style (legacy, no optimizer) MoCo v1 checkpoint of a
                         1-channel CIFAR-stem net with a linear head, encoder_k sharing
                         encoder_q's storages (what //eval:knn reads in eval/pipelines_test)

Model: torchvision resnet18 structure at width 1/32 (channels 2, 4, 8, 16), ImageNet stem,
MoCo v2 MLP head 16-16-16, queue K=32; random weights and BN statistics, seed 0.
Usage: cd moco/interop/testdata && /usr/bin/python3 make_torch_files.py
"""
import collections
import pickle
import zipfile

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import BasicBlock

WIDTH = 1 / 32
FEATURE_DIM = 16
QUEUE = 32


def c(n):
    return max(1, round(n * WIDTH))


class TinyResNet18(torchvision.models.resnet.ResNet):
    """torchvision's ResNet (its _make_layer, BasicBlock and forward) with scaled widths."""

    def __init__(self, in_channels=3, cifar_stem=False, mlp_head=True):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = c(64)
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        if cifar_stem:
            self.conv1 = nn.Conv2d(in_channels, c(64), kernel_size=3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, c(64), kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(c(64))
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if cifar_stem else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(BasicBlock, c(64), 2)
        self.layer2 = self._make_layer(BasicBlock, c(128), 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, c(256), 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, c(512), 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        d = c(512)
        self.fc = (nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, FEATURE_DIM)) if mlp_head
                   else nn.Linear(d, FEATURE_DIM))


def randomize(model, gen):
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            t.fill_(1234)
        elif name.endswith("running_var") or (name.endswith("weight") and t.dim() == 1):
            t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
        elif name.endswith("running_mean") or name.endswith("bias"):
            t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
        else:
            fan_in = t[0].numel()
            t.copy_(torch.randn(t.shape, generator=gen) * (2.0 / fan_in) ** 0.5)


class MoCo(nn.Module):
    def __init__(self, gen):
        super().__init__()
        self.encoder_q = TinyResNet18()
        self.encoder_k = TinyResNet18()
        with torch.no_grad():
            randomize(self.encoder_q, gen)
            randomize(self.encoder_k, gen)
        self.register_buffer("queue", F.normalize(torch.randn(FEATURE_DIM, QUEUE, generator=gen), dim=0))
        self.register_buffer("queue_ptr", torch.tensor([8], dtype=torch.long))


class Wrapper(nn.Module):  # DistributedDataParallel's "module." prefix
    def __init__(self, gen):
        super().__init__()
        self.module = MoCo(gen)


def forward(encoder, x):
    encoder.eval()
    with torch.no_grad():
        head, encoder.fc = encoder.fc, nn.Identity()
        features = encoder(x)
        encoder.fc = head
        out = F.normalize(encoder(x), dim=1)
    return features, out


def write_deflated():
    with zipfile.ZipFile("dtypes_zip.pth") as src, \
            zipfile.ZipFile("dtypes_deflated.pth", "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))


def main():
    gen = torch.Generator().manual_seed(0)
    model = Wrapper(gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
    for p in model.module.encoder_q.parameters():  # one step: momentum buffers for encoder_q
        p.grad = torch.randn(p.shape, generator=gen) * 0.01
    opt.step()

    sd = model.state_dict()
    torch.save({"epoch": 3, "arch": "resnet18", "state_dict": sd, "optimizer": opt.state_dict()},
               "moco_v2_zip.pth")

    # Released-style: legacy format, no optimizer; the queue as a transposed (strided) view.
    legacy = collections.OrderedDict(sd)
    legacy["module.queue"] = sd["module.queue"].t().contiguous().t()
    assert not legacy["module.queue"].is_contiguous()
    torch.save({"epoch": 200, "arch": "resnet18", "state_dict": legacy}, "moco_v2_legacy.pth.tar",
               _use_new_zipfile_serialization=False)

    # The official moco/detection/convert-pretrain-to-detectron2.py, fc dropped.
    newmodel = {}
    for k, v in sd.items():
        if not k.startswith("module.encoder_q.") or ".fc." in k:
            continue
        k = k.replace("module.encoder_q.", "")
        if "layer" not in k:
            k = "stem." + k
        for t in [1, 2, 3, 4]:
            k = k.replace("layer{}".format(t), "res{}".format(t + 1))
        for t in [1, 2, 3]:
            k = k.replace("bn{}".format(t), "conv{}.norm".format(t))
        k = k.replace("downsample.0", "shortcut")
        k = k.replace("downsample.1", "shortcut.norm")
        newmodel[k] = v.numpy()
    with open("moco_v2_d2.pkl", "wb") as f:
        pickle.dump({"model": newmodel, "__author__": "MOCO", "matching_heuristics": True}, f)

    base = torch.arange(24, dtype=torch.float64).reshape(4, 6) / 8
    dtypes = collections.OrderedDict(
        f16=base.half(), bf16=base.bfloat16(), f64=base, i64=base.mul(8).long(),
        strided=base.float().t(), offset=base.float()[1:, 2:5], scalar=torch.tensor(2.5),
        empty=torch.zeros(0, 3))
    torch.save(dtypes, "dtypes_zip.pth")
    torch.save(dtypes, "dtypes_legacy.pth", _use_new_zipfile_serialization=False)
    write_deflated()

    x = torch.randn(2, 3, 32, 32, generator=gen)
    features, out = forward(model.module.encoder_q, x)
    torch.save({"input": x, "features": features, "output": out}, "golden.pth")

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("touch /tmp/moco_interop_evil_ran",))
    with open("evil.pkl", "wb") as f:
        pickle.dump({"model": Evil()}, f, protocol=2)

    gray = TinyResNet18(in_channels=1, cifar_stem=True, mlp_head=False)
    with torch.no_grad():
        randomize(gray, gen)
    gsd = collections.OrderedDict()
    for k, v in gray.state_dict().items():
        gsd["module.encoder_q." + k] = v
    for k, v in gray.state_dict().items():
        gsd["module.encoder_k." + k] = v  # the same tensors: stored once
    gsd["module.queue"] = F.normalize(torch.randn(FEATURE_DIM, QUEUE, generator=gen), dim=0)
    gsd["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
    torch.save({"epoch": 200, "arch": "resnet18", "state_dict": gsd}, "moco_v1_gray_legacy.pth.tar",
               _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    main()
