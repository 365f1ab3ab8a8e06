"""The MoCo training step in plain PyTorch, as a Python user would write it, for comparison with
moco-cpp's bench/step_benchmark (same step, same FLOP formula, same output line).

Written from the paper (He et al. 2019, arXiv 1911.05722, Algorithm 1; v2 MLP head from
arXiv 2003.04297) with the step semantics of moco/methods/moco_step.h:

    momentum update f_k <- m f_k + (1 - m) f_q   (parameters only, no grad)
    q = normalize(f_q(x_q))
    k = normalize(f_k(x_k[perm]))[perm^-1]       shuffling BN, no grad
    logits = [q.k, q queue^T] / T, loss = CE(logits, 0)
    SGD (momentum, weight decay) step on f_q; enqueue k, dequeue the oldest

--arch=resnet50 uses torchvision's resnet50 (3-channel ImageNet stem); --amp bf16 and
--channels_last are PyTorch's CPU mixed-precision recipe (autocast around the forwards,
fp32 master weights and loss).

BatchNorm statistics are computed over bn_splits groups of the batch in both encoders
(SplitBatchNorm2d below). Run with Debian's /usr/bin/python3 (python3-torch 1.13,
python3-torchvision 0.14):

    /usr/bin/python3 bench/moco_step_pytorch.py --mode=compute --batch=256 --threads=2 \
        --width=1 --image_size=32 --channels=1
    /usr/bin/python3 bench/moco_step_pytorch.py --mode=e2e --width=0.25 --image_size=28

Modes: compute (two fixed pairs of random views, alternated) and e2e (a torch DataLoader over
Fashion-MNIST read from its IDX .gz files, two torchvision-augmented views per image, the
quickstart recipe; num_workers=2). Output, one line per measurement:

    BENCH impl=python backend=pytorch mode=... sec_per_step=... img_per_s=... gflop_per_s=...
"""
import argparse
import copy
import gzip
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- model


class SplitBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are computed over `num_splits` groups of the batch
    (group g = samples g, g + s, g + 2s, ...), as `num_splits` GPUs would. The running
    statistics take the mean over groups of each group's update."""

    def __init__(self, num_features, num_splits=1):
        super().__init__(num_features)
        self.num_splits = num_splits

    def forward(self, x):
        s = self.num_splits
        if not self.training or s == 1:
            return super().forward(x)
        n, c, h, w = x.shape
        if n % s:
            raise ValueError(f"batch {n} is not divisible by bn_splits {s}")
        # (n, c, h, w) viewed as (n / s, s * c, h, w): channel block g holds group g.
        mean = self.running_mean.repeat(s)
        var = self.running_var.repeat(s)
        y = F.batch_norm(x.reshape(n // s, s * c, h, w), mean, var, self.weight.repeat(s),
                         self.bias.repeat(s), True, self.momentum, self.eps)
        with torch.no_grad():
            self.running_mean.copy_(mean.view(s, c).mean(0))
            self.running_var.copy_(var.view(s, c).mean(0))
            self.num_batches_tracked += 1
        return y.view(n, c, h, w)


def scaled(base, width):
    return max(1, int(math.floor(base * width + 0.5)))


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride, norm):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = norm(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = norm(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                            norm(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision's resnet18 structure and names, with a stage-width multiplier, 1- or
    3-channel input, an optional CIFAR stem (3x3 stride-1 conv1, no max pool) and MoCo's head
    as `fc` (v1 Linear, or v2 Linear-ReLU-Linear with hidden = backbone width)."""

    def __init__(self, width=1.0, in_channels=3, cifar_stem=True, feature_dim=128,
                 mlp_head=True, bn_splits=1):
        super().__init__()
        norm = lambda c: SplitBatchNorm2d(c, bn_splits)  # noqa: E731
        c1 = scaled(64, width)
        if cifar_stem:
            self.conv1 = nn.Conv2d(in_channels, c1, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, c1, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = norm(c1)
        self.relu = nn.ReLU(inplace=True)
        in_planes = c1
        for i, base in enumerate((64, 128, 256, 512)):
            planes = scaled(base, width)
            stride = 1 if i == 0 else 2
            layer = nn.Sequential(BasicBlock(in_planes, planes, stride, norm),
                                  BasicBlock(planes, planes, 1, norm))
            setattr(self, f"layer{i + 1}", layer)
            in_planes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        if mlp_head:
            self.fc = nn.Sequential(nn.Linear(in_planes, in_planes), nn.ReLU(),
                                    nn.Linear(in_planes, feature_dim))
        else:
            self.fc = nn.Linear(in_planes, feature_dim)
        for m in self.modules():  # torchvision's initialization
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet50_moco(feature_dim, mlp_head, bn_splits):
    """torchvision's resnet50 with split BN and MoCo's head, as the official MoCo code builds
    its encoders (3-channel ImageNet stem)."""
    import torchvision
    net = torchvision.models.resnet50(num_classes=feature_dim,
                                      norm_layer=lambda c: SplitBatchNorm2d(c, bn_splits))
    if mlp_head:
        dim = net.fc.weight.shape[1]
        net.fc = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), net.fc)
    return net


def make_encoder(args):
    if args.arch == "resnet50":
        if args.channels != 3 or args.cifar_stem:
            raise SystemExit("--arch=resnet50 takes --channels=3 --cifar_stem=0")
        return resnet50_moco(args.feature_dim, args.mlp_head, args.bn_splits)
    return ResNet18(args.width, args.channels, args.cifar_stem, args.feature_dim,
                    args.mlp_head, args.bn_splits)


def counted_macs_per_image(net, channels, image_size):
    """Multiply-accumulates of one image's forward through convs and linears (forward hooks)."""
    counted = [0]

    def hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] if isinstance(m, nn.Conv2d) else 1
        fan_in = m.in_channels // m.groups if isinstance(m, nn.Conv2d) else m.in_features
        counted[0] += out.numel() * fan_in * k

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = net.training
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, channels, image_size, image_size))
    net.train(was_training)
    for h in handles:
        h.remove()
    return counted[0]


def peak_gflops(bf16):
    """This machine's convolution ceiling for the precision, measured as bench/peak_flops.h
    does (3x3 64->64 conv on 32x64x56x56 channels-last, best of 5 after 2 warmups)."""
    dtype = torch.bfloat16 if bf16 else torch.float32
    x = torch.randn(32, 64, 56, 56, dtype=dtype).to(memory_format=torch.channels_last)
    w = torch.randn(64, 64, 3, 3, dtype=dtype).to(memory_format=torch.channels_last)
    best = 1e30
    with torch.no_grad():
        for i in range(7):
            t0 = time.perf_counter()
            F.conv2d(x, w, padding=1)
            if i >= 2:
                best = min(best, time.perf_counter() - t0)
    return 2.0 * 32 * 64 * 56 * 56 * 64 * 9 / best / 1e9


# ---------------------------------------------------------------- FLOPs (as bench/step_flops.h)


def forward_macs_per_image(width, in_channels, cifar_stem, image_size, feature_dim, mlp_head):
    def out(size, k, s, p):
        return (size + 2 * p - k) // s + 1

    macs = 0
    c = scaled(64, width)
    if cifar_stem:
        size = out(image_size, 3, 1, 1)
        macs += c * size * size * in_channels * 9
    else:
        size = out(image_size, 7, 2, 3)
        macs += c * size * size * in_channels * 49
        size = out(size, 3, 2, 1)
    for i, base in enumerate((64, 128, 256, 512)):
        planes = scaled(base, width)
        for b in range(2):
            stride = 2 if (i > 0 and b == 0) else 1
            o = out(size, 3, stride, 1)
            macs += planes * o * o * c * 9 + planes * o * o * planes * 9
            if stride != 1 or c != planes:
                macs += planes * o * o * c
            c, size = planes, o
    macs += (c * c + c * feature_dim) if mlp_head else c * feature_dim
    return macs


def step_flops(args, encoder=None):
    if args.arch == "resnet18":
        macs = forward_macs_per_image(args.width, args.channels, args.cifar_stem,
                                      args.image_size, args.feature_dim, args.mlp_head)
    else:
        macs = counted_macs_per_image(encoder, args.channels, args.image_size)
    fwd = 2.0 * macs
    return 4.0 * args.batch * fwd + 4.0 * args.batch * args.queue * args.feature_dim


# ---------------------------------------------------------------- data


def read_idx_images(path):
    """uint8 images (n, rows, cols) from an IDX3 file (gzip or raw)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != 2051:
        raise ValueError(f"{path}: not an IDX3 image file (magic {magic})")
    return np.frombuffer(data, np.uint8, n * rows * cols, 16).reshape(n, rows, cols)


class TwoViewFashionMNIST(torch.utils.data.Dataset):
    def __init__(self, folder, transform, channels):
        for name in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"):
            path = os.path.join(folder, name)
            if os.path.exists(path):
                break
        else:
            raise FileNotFoundError(f"{folder}: no train-images-idx3-ubyte[.gz]")
        self.images = read_idx_images(path)
        self.transform = transform
        self.channels = channels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        from PIL import Image
        img = Image.fromarray(self.images[i], mode="L")
        if self.channels == 3:
            img = img.convert("RGB")
        return self.transform(img), self.transform(img)


def make_loader(args):
    import torchvision.transforms as T
    # The quickstart recipe (configs/quickstart.pbtxt: CIFAR preset with crop 0.2-1).
    transform = T.Compose([
        T.RandomResizedCrop(args.image_size, scale=(args.crop_min, 1.0)),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize([args.mean] * args.channels, [args.std] * args.channels),
    ])
    dataset = TwoViewFashionMNIST(args.data, transform, args.channels)
    return torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=True,
                                       num_workers=args.num_workers, drop_last=True,
                                       persistent_workers=args.num_workers > 0)


class Batches:
    def __init__(self, args):
        self.loader = make_loader(args) if args.mode == "e2e" else None
        if self.loader is None:
            g = torch.Generator().manual_seed(args.seed)
            shape = (args.batch, args.channels, args.image_size, args.image_size)
            self.fixed = [torch.randn(shape, generator=g) for _ in range(4)]
            self.count = 0
        else:
            self.it = iter(self.loader)

    def next(self):
        if self.loader is None:
            i = 2 * self.count
            self.count += 1
            return self.fixed[i % 4], self.fixed[(i + 1) % 4]
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)


# ---------------------------------------------------------------- MoCo


class Moco:
    def __init__(self, args):
        self.args = args
        self.f_q = make_encoder(args)
        if args.channels_last:
            self.f_q = self.f_q.to(memory_format=torch.channels_last)
        self.f_k = copy.deepcopy(self.f_q)
        for p in self.f_k.parameters():
            p.requires_grad = False
        self.f_q.train()
        self.f_k.train()
        self.queue = F.normalize(torch.randn(args.queue, args.feature_dim), dim=1)
        self.ptr = 0
        self.opt = torch.optim.SGD(self.f_q.parameters(), lr=args.lr, momentum=0.9,
                                   weight_decay=args.weight_decay)

    def step(self, x_q, x_k, t=None):
        """One MoCo step; `t` (a list of 8 floats) accumulates per-phase seconds if given."""
        a = self.args
        clock = [time.perf_counter()]

        def lap(i):
            if t is not None:
                now = time.perf_counter()
                t[i] += now - clock[0]
                clock[0] = now

        with torch.no_grad():
            for p_k, p_q in zip(self.f_k.parameters(), self.f_q.parameters()):
                p_k.mul_(a.momentum).add_(p_q.detach(), alpha=1 - a.momentum)
        lap(1)
        if a.channels_last:
            x_q = x_q.contiguous(memory_format=torch.channels_last)
            x_k = x_k.contiguous(memory_format=torch.channels_last)
        # --amp bf16: autocast around the forward passes only, fp32 master weights (the
        # PyTorch recipe); the loss is computed in fp32 from the cast-back features.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.amp == "bf16"):
            q = self.f_q(x_q)
        q = F.normalize(q.float(), dim=1)
        lap(2)
        with torch.no_grad():
            perm = torch.randperm(x_k.shape[0])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.amp == "bf16"):
                k = self.f_k(x_k[perm])
            k = F.normalize(k.float(), dim=1)[torch.argsort(perm)]
        lap(3)
        l_pos = (q * k).sum(dim=1, keepdim=True)
        l_neg = q @ self.queue.t()
        logits = torch.cat([l_pos, l_neg], dim=1) / a.temperature
        loss = F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long))
        lap(4)
        self.opt.zero_grad()
        loss.backward()
        lap(5)
        self.opt.step()
        lap(6)
        n = k.shape[0]
        self.queue[self.ptr:self.ptr + n] = k
        self.ptr = (self.ptr + n) % self.queue.shape[0]
        lap(7)
        return loss.item()


def header(args, tag):
    workers = args.num_workers if args.mode == "e2e" else 0
    return (f"{tag} impl=python backend=pytorch mode={args.mode} arch={args.arch} "
            f"cifar_stem={int(args.cifar_stem)} width={args.width:g} channels={args.channels} "
            f"image_size={args.image_size} batch={args.batch} queue={args.queue} "
            f"threads={args.threads} workers={workers} warmup={args.warmup} steps={args.steps} "
            f"precision={'bf16' if args.amp == 'bf16' else 'fp32'} "
            f"channels_last={int(args.channels_last)}")


def measure(args, phases):
    torch.manual_seed(args.seed)
    moco = Moco(args)
    batches = Batches(args)
    total = [0.0] * 8
    loss = 0.0
    start = time.perf_counter()
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            start = time.perf_counter()
        t = [0.0] * 8 if phases else None
        t0 = time.perf_counter()
        x_q, x_k = batches.next()
        if phases:
            t[0] = time.perf_counter() - t0
        loss = moco.step(x_q, x_k, t)
        if phases and i >= args.warmup:
            total = [s + x for s, x in zip(total, t)]
    sec = (time.perf_counter() - start) / args.steps
    if not phases:
        flops = step_flops(args, moco.f_q)
        gflops = flops / sec / 1e9
        peak = args.peak_gflops if args.peak_gflops > 0 else peak_gflops(args.amp == "bf16")
        print(f"{header(args, 'BENCH')} sec_per_step={sec:.4f} img_per_s={args.batch / sec:.2f} "
              f"gflop_per_step={flops / 1e9:.3f} gflop_per_s={gflops:.2f} "
              f"peak_gflop_per_s={peak:.1f} pct_of_peak={100 * gflops / peak:.1f} "
              f"loss={loss:.4f}", flush=True)
    else:
        names = ["data", "momentum", "q_fwd", "k_fwd", "loss", "backward", "optimizer",
                 "enqueue"]
        parts = " ".join(f"{n}_ms={1000 * s / args.steps:.1f}" for n, s in zip(names, total))
        print(f"{header(args, 'PHASES')} {parts}", flush=True)


def profile(args):
    """Op-level profile (torch.profiler) of --steps steps after --warmup: the aten ops that
    moco-cpp's LibTorch backend calls too, by self CPU time."""
    from torch.profiler import ProfilerActivity, profile as torch_profile
    torch.manual_seed(args.seed)
    moco = Moco(args)
    batches = Batches(args)
    for _ in range(args.warmup):
        moco.step(*batches.next())
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            moco.step(*batches.next())
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))


def self_check():
    """At width 1 the model has torchvision resnet18's parameter names and shapes (head aside),
    and the analytic FLOP formula matches the MACs counted by hooks on the real modules."""
    import torchvision
    ours = ResNet18(1.0, 3, cifar_stem=False, feature_dim=1000, mlp_head=False)
    ref = torchvision.models.resnet18()
    a = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    b = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    if a != b:
        raise SystemExit(f"self-check: state_dict differs from torchvision: {set(a) ^ set(b)}")
    print("self-check: resnet18 state_dict names and shapes equal torchvision's")
    for width, channels, cifar, size, mlp in [(1.0, 1, 1, 32, 1), (0.25, 1, 1, 28, 1),
                                              (0.5, 3, 0, 64, 0)]:
        net = ResNet18(width, channels, bool(cifar), 128, bool(mlp)).eval()
        counted = [0]

        def hook(m, inp, out):
            k = m.kernel_size[0] * m.kernel_size[1] if isinstance(m, nn.Conv2d) else 1
            fan_in = m.in_channels if isinstance(m, nn.Conv2d) else m.in_features
            counted[0] += out.numel() * fan_in * k

        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.register_forward_hook(hook)
        with torch.no_grad():
            net(torch.zeros(1, channels, size, size))
        formula = forward_macs_per_image(width, channels, cifar, size, 128, mlp)
        if formula != counted[0]:
            raise SystemExit(f"self-check: FLOP formula {formula} != hook count {counted[0]}")
    print("self-check: the analytic MAC formula equals hook counts on the real modules")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["compute", "e2e"], default="compute")
    p.add_argument("--arch", default="resnet18", choices=["resnet18", "resnet50"])
    p.add_argument("--cifar_stem", type=int, default=1)
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--image_size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1, choices=[1, 3])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--queue", type=int, default=4096)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bn_splits", type=int, default=8)
    p.add_argument("--feature_dim", type=int, default=128)
    p.add_argument("--mlp_head", type=int, default=1)
    p.add_argument("--momentum", type=float, default=0.99)
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=0.06)
    p.add_argument("--weight_decay", type=float, default=5e-4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--phases", action="store_true", help="also time each phase of the step")
    p.add_argument("--peak_gflops", type=float, default=0,
                   help="ceiling for pct_of_peak; 0: measure this machine's conv ceiling")
    p.add_argument("--amp", choices=["none", "bf16"], default="none",
                   help="bf16: torch.autocast around the forward passes")
    p.add_argument("--channels_last", action="store_true",
                   help="model and inputs in torch.channels_last")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--num_workers", type=int, default=2)
    p.add_argument("--crop_min", type=float, default=0.2)
    p.add_argument("--mean", type=float, default=0.2860)
    p.add_argument("--std", type=float, default=0.3530)
    p.add_argument("--self_check", action="store_true")
    p.add_argument("--profile", action="store_true",
                   help="print a torch.profiler op table of --steps steps instead")
    args = p.parse_args()
    if args.self_check:
        self_check()
        return
    if args.queue % args.batch or args.batch % args.bn_splits:
        raise SystemExit("--queue must be a multiple of --batch, and --batch of --bn_splits")
    torch.set_num_threads(args.threads)
    if args.profile:
        profile(args)
        return
    measure(args, phases=False)
    if args.phases:
        measure(args, phases=True)


if __name__ == "__main__":
    sys.exit(main())
