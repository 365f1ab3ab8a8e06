#!/usr/bin/python3
"""Writes data/testdata/image_ops_goldens.txt: torchvision 0.14 outputs for data/image_ops.

Run from the repository root with Debian's python3-torchvision:
    /usr/bin/python3 data/testdata/make_goldens.py

Semantics matched: torchvision's tensor functional ops on float images in [0, 1] (ToTensor of
a uint8 image), bilinear resize with antialias=False, GaussianBlur with kernel size
2 * ceil(3 sigma) + 1. Each record is one line:
    name C H W v0 v1 ...        (CHW order; 'input_*' records hold uint8 HWC values)
"""
import math
import os

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "image_ops_goldens.txt")


def blur_kernel_size(sigma):
    return 2 * math.ceil(3.0 * sigma) + 1


def main():
    assert torchvision.__version__.startswith("0.14"), torchvision.__version__
    rng = np.random.RandomState(20261127)
    rgb = rng.randint(0, 256, size=(8, 10, 3)).astype(np.uint8)
    rgb[0, 0] = [90, 90, 90]      # a gray pixel (hue undefined)
    rgb[1, 1] = [255, 0, 0]       # saturated primaries
    rgb[1, 2] = [0, 255, 255]
    rgb[2, 3] = [0, 0, 0]
    rgb[2, 4] = [255, 255, 255]
    gray = rng.randint(0, 256, size=(8, 10, 1)).astype(np.uint8)

    records = []

    def add(name, t):
        t = t.detach().to(torch.float32).contiguous()
        c, h, w = t.shape
        vals = " ".join("%.9g" % v for v in t.flatten().tolist())
        records.append("%s %d %d %d %s" % (name, c, h, w, vals))

    def add_u8(name, a):
        h, w, c = a.shape
        records.append("%s %d %d %d %s" % (name, c, h, w, " ".join(str(int(v)) for v in a.flatten())))

    add_u8("input_rgb", rgb)
    add_u8("input_gray", gray)
    x = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0
    g = torch.from_numpy(gray).permute(2, 0, 1).float() / 255.0

    bil = F.InterpolationMode.BILINEAR
    add("resize_full_16x20", F.resize(x, [16, 20], interpolation=bil, antialias=False))
    add("resize_full_5x3", F.resize(x, [5, 3], interpolation=bil, antialias=False))
    add("resized_crop_1_2_6_7_to_9x5",
        F.resized_crop(x, 1, 2, 6, 7, [9, 5], interpolation=bil, antialias=False))
    add("resized_crop_gray_3_0_5_10_to_7x7",
        F.resized_crop(g, 3, 0, 5, 10, [7, 7], interpolation=bil, antialias=False))
    add("grayscale", F.rgb_to_grayscale(x, num_output_channels=3))
    add("to_luminance", F.rgb_to_grayscale(x, num_output_channels=1))
    for f in (1.37, 0.6):
        add("brightness_%g" % f, F.adjust_brightness(x, f))
    for f in (1.5, 0.55):
        add("contrast_%g" % f, F.adjust_contrast(x, f))
    add("contrast_gray_1.4", F.adjust_contrast(g, 1.4))
    for f in (1.8, 0.3):
        add("saturation_%g" % f, F.adjust_saturation(x, f))
    for f in (0.23, -0.41, 0.1):
        add("hue_%g" % f, F.adjust_hue(x, f))
    for s in (0.8, 1.5):
        k = blur_kernel_size(s)
        add("blur_%g" % s, F.gaussian_blur(x, [k, k], [s, s]))
    add("hflip", F.hflip(x))
    # MoCo v3's Solarize is PIL's at 128 on 8-bit images: 128/255 on [0, 1] floats.
    add("solarize", F.solarize(x, 128.0 / 255.0))
    # The evaluation view of an ImageFolder image at image_size 6: Resize(round(6 / 0.875) = 7)
    # then CenterCrop(6).
    add("eval_resize7_crop6", F.center_crop(F.resize(x, 7, interpolation=bil, antialias=False), 6))

    with open(OUT, "w") as f:
        f.write("# made by data/testdata/make_goldens.py with torch %s torchvision %s\n"
                % (torch.__version__, torchvision.__version__))
        f.write("\n".join(records) + "\n")
    print("wrote", OUT, len(records), "records")


if __name__ == "__main__":
    main()
