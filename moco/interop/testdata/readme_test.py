#!/usr/bin/python3
"""Runs README.md's "Using the weights in PyTorch" lines: its three convert commands (on a
native checkpoint made from the committed tiny official file instead of the ImageNet run) and
its Python block. The tiny net is a width-1/32 resnet18, so torchvision.models.resnet50 is
replaced by that architecture (with torchvision's 1000-class fc); every other line runs as
written.

  readme_test.py CONVERT_BINARY README.md
"""
import os
import re
import subprocess
import sys
import tempfile

import torch.nn as nn
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_torch_files as m  # noqa: E402


def main(convert, readme):
    text = open(readme).read()
    section = text.split("## Using the weights in PyTorch", 1)[1].split("\n## ", 1)[0]
    sh = re.findall(r"```sh\n(.*?)```", section, re.S)[0].strip().splitlines()
    py = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    assert len(sh) == 3, sh
    tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
    native = os.path.join(tmp, "checkpoint.ckpt")
    subprocess.run([convert, "--in=" + os.path.join(HERE, "moco_v2_zip.pth"), "--to=native",
                    "--out=" + native], check=True)
    for line in sh:
        prefix = "bazel run //tools:convert -- "
        assert line.startswith(prefix), line
        args = line[len(prefix):].replace("/tmp/", tmp + "/")
        args = args.replace("runs/moco_v2_imagenet/checkpoint.ckpt", native)
        subprocess.run([convert] + args.split(), check=True)
        print("ran:", line)

    def tiny_resnet50():
        net = m.TinyResNet18()
        net.fc = nn.Linear(16, 1000)
        return net

    torchvision.models.resnet50 = tiny_resnet50
    exec(compile(py.replace("/tmp/", tmp + "/"), "README.md", "exec"), {})
    print("README Python lines ran")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
