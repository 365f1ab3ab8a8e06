#!/usr/bin/python3
"""Writes the seed corpora under fuzz/corpus/ from real files (docs/FUZZING.md).

Run from the repository root with Debian's python3 (python3-pil), Fashion-MNIST installed:
    /usr/bin/python3 fuzz/make_corpora.py
    bazel run //fuzz:make_checkpoint_seeds -- $PWD/fuzz/corpus/checkpoint

idx, idx_gzip   the first 3 / 1 images and labels of Fashion-MNIST's test split (two-file input)
cifar           2 records made of Fashion-MNIST images (padded to 32 x 32, gray as RGB)
jpeg            data/testdata's CMYK and grayscale JPEGs; baseline, progressive, 4:4:4 RGB
png             gray, RGB, RGBA, palette, 16-bit and interlaced PNGs of a Fashion-MNIST image
experiment_config, eval_config   the committed example configs
torch_file      the small torch.save / pickle files of moco/interop/testdata
Crashers found later are added next to the seeds by tools/fuzz.sh (crash-*, never rewritten).
"""
import gzip
import io
import os
import struct

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
MNIST = "/usr/share/datasets/fashion-mnist"


def put(kind, name, data):
    os.makedirs(os.path.join(OUT, kind), exist_ok=True)
    with open(os.path.join(OUT, kind, name), "wb") as f:
        f.write(data)


def two_files(first, second):  # fuzz/fuzz_input.h's SplitTwoFiles layout
    return struct.pack("<H", len(first)) + first + second


def fashion(n):
    with gzip.open(os.path.join(MNIST, "t10k-images-idx3-ubyte.gz")) as f:
        images = f.read(16 + 784 * n)[16:]
    with gzip.open(os.path.join(MNIST, "t10k-labels-idx1-ubyte.gz")) as f:
        labels = f.read(8 + n)[8:]
    return images, labels


def idx(n):
    images, labels = fashion(n)
    return (struct.pack(">IIII", 0x803, n, 28, 28) + images, struct.pack(">II", 0x801, n) + labels)


def main():
    img, lab = idx(3)
    put("idx", "fashion3", two_files(img, lab))
    img1, lab1 = idx(1)
    put("idx", "fashion1", two_files(img1, lab1))
    put("idx_gzip", "fashion1_gz", two_files(gzip.compress(img1, mtime=0), gzip.compress(lab1, mtime=0)))
    put("idx_gzip", "fashion1_gz_labels_raw", two_files(gzip.compress(img1, mtime=0), lab1))

    images, labels = fashion(2)
    for classes, mode in ((10, b"\0"), (100, b"\1")):
        records = b""
        for i in range(2):
            im = Image.frombytes("L", (28, 28), images[784 * i:784 * (i + 1)])
            pad = Image.new("L", (32, 32))
            pad.paste(im, (2, 2))
            plane = pad.tobytes()
            label = bytes([labels[i]]) if classes == 10 else bytes([labels[i] // 2, labels[i]])
            records += label + plane * 3
        put("cifar", "fashion2_cifar%d" % classes, mode + records)

    im = Image.frombytes("L", (28, 28), images[:784])
    rgb = Image.merge("RGB", (im, im.transpose(Image.FLIP_LEFT_RIGHT), im.transpose(Image.FLIP_TOP_BOTTOM)))
    for name, kw in (("baseline.jpg", {}), ("progressive.jpg", {"progressive": True}),
                     ("444.jpg", {"subsampling": 0}), ("q20.jpg", {"quality": 20})):
        buf = io.BytesIO()
        rgb.save(buf, "JPEG", **kw)
        put("jpeg", name, buf.getvalue())
    for name in ("cmyk.jpg", "gray.jpg"):
        with open(os.path.join(ROOT, "data", "testdata", name), "rb") as f:
            put("jpeg", name, f.read())

    pngs = {
        "gray.png": (im, {}),
        "rgb.png": (rgb, {}),
        "rgba.png": (Image.merge("RGBA", rgb.split() + (im,)), {}),
        "palette.png": (rgb.convert("P"), {}),
        "gray16.png": (im.convert("I;16"), {}),
        "interlaced.png": (rgb, {"interlace": 1}),
    }
    for name, (image, kw) in pngs.items():
        buf = io.BytesIO()
        image.save(buf, "PNG", **kw)
        put("png", name, buf.getvalue())

    for src, kind in ((os.path.join(ROOT, "configs"), "experiment_config"),
                      (os.path.join(ROOT, "eval", "configs"), "eval_config")):
        for name in sorted(os.listdir(src)):
            if name.endswith(".pbtxt"):
                with open(os.path.join(src, name), "rb") as f:
                    put(kind, name, f.read())

    for name in ("dtypes_deflated.pth", "dtypes_legacy.pth", "dtypes_zip.pth", "evil.pkl", "golden.pth"):
        with open(os.path.join(ROOT, "moco", "interop", "testdata", name), "rb") as f:
            put("torch_file", name, f.read())


if __name__ == "__main__":
    main()
