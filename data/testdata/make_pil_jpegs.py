#!/usr/bin/python3
"""Writes CMYK and grayscale JPEGs and the RGB that PIL (Pillow 9.4) decodes them to.

Run from the repository root with Debian's python3-pil:
    /usr/bin/python3 data/testdata/make_pil_jpegs.py

Files (data/testdata/):
    cmyk.jpg      4-component JPEG as Pillow writes it (Adobe APP14, inverted CMYK, transform 0)
    gray.jpg      1-component JPEG
    pil_jpeg_rgb.txt   one line per file: "name H W v0 v1 ..." (HWC RGB of
                       Image.open(f).convert("RGB"), the conversion torchvision's ImageFolder does)
"""
import io
import os

import PIL
from PIL import Image

DIR = os.path.dirname(os.path.abspath(__file__))


def cmyk_image():
    w, h = 19, 13  # odd sizes: partial MCUs
    im = Image.new("CMYK", (w, h))
    im.putdata([((x * 13) % 256, (y * 19) % 256, ((x + y) * 7) % 256, (x * 5 + y * 11) % 256)
                for y in range(h) for x in range(w)])
    return im


def gray_image():
    w, h = 11, 7
    im = Image.new("L", (w, h))
    im.putdata([(x * 23 + y * 9) % 256 for y in range(h) for x in range(w)])
    return im


def main():
    assert PIL.__version__.startswith("9.4"), PIL.__version__
    lines = []
    for name, im in (("cmyk.jpg", cmyk_image()), ("gray.jpg", gray_image())):
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        data = buf.getvalue()
        with open(os.path.join(DIR, name), "wb") as f:
            f.write(data)
        rgb = Image.open(io.BytesIO(data)).convert("RGB")
        values = [v for px in rgb.getdata() for v in px]
        lines.append(" ".join([name, str(rgb.height), str(rgb.width)] + [str(v) for v in values]))
    with open(os.path.join(DIR, "pil_jpeg_rgb.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
