"""Golden MAC counts for bench/step_flops_test.cc, counted independently of step_flops.cc.

Builds torchvision's ResNets (with the CIFAR stem swapped in and MoCo's head as fc), runs one
forward pass on a 1-image batch and sums the multiply-accumulates of every Conv2d and Linear that
actually ran (forward hooks on their real input/output shapes). Width multipliers other than 1
are not in torchvision; those cases use bench/moco_step_pytorch.py's ResNet.

    /usr/bin/python3 bench/flops_golden.py > bench/testdata/flops_golden.txt
"""
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moco_step_pytorch as msp  # noqa: E402


def count_macs(model, channels, size):
    total = [0]

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        total[0] += out.numel() * (m.in_channels // m.groups) * k

    def linear_hook(m, inp, out):
        total[0] += out.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, channels, size, size))
    for h in hooks:
        h.remove()
    return total[0]


def torchvision_net(arch, cifar_stem, channels, feature_dim, mlp):
    net = getattr(torchvision.models, arch)()
    width = net.fc.in_features
    if cifar_stem:
        net.conv1 = torch.nn.Conv2d(channels, 64, 3, 1, 1, bias=False)
        net.maxpool = torch.nn.Identity()
    else:
        net.conv1 = torch.nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
    if mlp:
        net.fc = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(),
                                     torch.nn.Linear(width, feature_dim))
    else:
        net.fc = torch.nn.Linear(width, feature_dim)
    return net


def main():
    # arch cifar_stem width channels size feature_dim mlp macs
    cases = [
        ("resnet18", 0, 1.0, 3, 224, 1000, 0),
        ("resnet18", 1, 1.0, 1, 32, 128, 1),
        ("resnet18", 1, 1.0, 3, 32, 128, 1),
        ("resnet34", 1, 1.0, 3, 32, 128, 0),
        ("resnet50", 0, 1.0, 3, 224, 128, 1),
        ("resnet18", 1, 0.25, 1, 28, 128, 1),
        ("resnet18", 1, 0.5, 3, 32, 128, 0),
    ]
    print("# arch cifar_stem width channels image_size feature_dim mlp_head forward_macs")
    for arch, cifar, width, ch, size, dim, mlp in cases:
        if width == 1.0:
            net = torchvision_net(arch, cifar, ch, dim, mlp)
        else:
            net = msp.ResNet18(width=width, in_channels=ch, cifar_stem=bool(cifar),
                               feature_dim=dim, mlp_head=bool(mlp), bn_splits=1)
        print(arch, cifar, width, ch, size, dim, mlp, count_macs(net, ch, size))


if __name__ == "__main__":
    main()
