#!/usr/bin/python3
"""Interop check (needs /usr/bin/python3 with torch 1.13, torchvision, numpy): loads the files
tools/convert wrote from the committed Python-made checkpoints and checks them with PyTorch.

  check_exports.py DIR   where DIR holds (written by interop_python_test.sh):
    zip.torchvision.pth   backbone of moco_v2_zip.pth        (native -> torchvision)
    zip.moco.pth          full checkpoint with SGD state      (native -> moco)
    legacy.moco.pth       from the legacy file, no optimizer  (native -> moco)
    zip.d2.pkl            detectron2                          (native -> detectron2)
    v3.moco_v3.pth        moco_v3_zip.pth through native and back (native -> moco_v3)
"""
import os
import pickle
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_torch_files as m  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max())


def main(d):
    original = torch.load(os.path.join(HERE, "moco_v2_zip.pth"))
    golden = torch.load(os.path.join(HERE, "golden.pth"))
    osd = original["state_dict"]

    # torchvision: weights_only, strict load with only fc missing, the same forward.
    sd = torch.load(os.path.join(d, "zip.torchvision.pth"), weights_only=True)
    net = m.TinyResNet18()
    net.fc = nn.Linear(16, 10)  # a classifier, as torchvision/main_lincls have
    missing, unexpected = net.load_state_dict(sd, strict=False)
    check(sorted(missing) == ["fc.bias", "fc.weight"] and not unexpected,
          "torchvision: weights_only load, strict=False misses only fc (%s, %s)" % (missing, unexpected))
    check(all(torch.equal(v, osd["module.encoder_q." + k]) and v.dtype == osd["module.encoder_q." + k].dtype
              for k, v in sd.items()), "torchvision: every tensor bit-exact, dtypes kept")
    net.fc = nn.Identity()
    net.eval()
    with torch.no_grad():
        err = rel_err(net(golden["input"]), golden["features"])
    check(err <= 1e-6, "torchvision: backbone features match (rel err %.2e)" % err)

    # moco: the official layout; main_moco resume (strict model + optimizer), main_lincls load.
    ck = torch.load(os.path.join(d, "zip.moco.pth"))
    check(ck["epoch"] == 3 and ck["arch"] == "resnet18", "moco: epoch and arch")
    model = m.Wrapper(torch.Generator().manual_seed(1))
    model.load_state_dict(ck["state_dict"])  # strict
    check(all(torch.equal(ck["state_dict"][k], v) and ck["state_dict"][k].dtype == v.dtype
              for k, v in osd.items()) and len(ck["state_dict"]) == len(osd),
          "moco: state_dict bit-exact with the original (queue (dim, K), int64 buffers)")
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
    opt.load_state_dict(ck["optimizer"])
    ostate = original["optimizer"]["state"]
    check(sorted(ck["optimizer"]["state"]) == sorted(ostate) and
          all(torch.equal(ck["optimizer"]["state"][i]["momentum_buffer"], ostate[i]["momentum_buffer"])
              for i in ostate), "moco: optimizer loads; momentum buffers bit-exact, same indices")
    check(ck["optimizer"]["param_groups"][0]["params"] == original["optimizer"]["param_groups"][0]["params"],
          "moco: param_groups params as torch.optim writes them")
    # main_lincls.py's loading code:
    state_dict = ck["state_dict"]
    for k in list(state_dict.keys()):
        if k.startswith("module.encoder_q") and not k.startswith("module.encoder_q.fc"):
            state_dict[k[len("module.encoder_q."):]] = state_dict[k]
        del state_dict[k]
    lincls = m.TinyResNet18()
    lincls.fc = nn.Linear(16, 10)
    msg = lincls.load_state_dict(state_dict, strict=False)
    check(set(msg.missing_keys) == {"fc.weight", "fc.bias"} and not msg.unexpected_keys,
          "moco: main_lincls.py's loading code accepts it")
    wo = torch.load(os.path.join(d, "legacy.moco.pth"), weights_only=True)
    check("optimizer" not in wo and len(wo["state_dict"]) == len(osd),
          "moco without optimizer: torch.load(weights_only=True) accepts it")
    wo2 = torch.load(os.path.join(d, "zip.noopt.moco.pth"), weights_only=True)
    check("optimizer" not in wo2 and all(torch.equal(wo2["state_dict"][k], v) for k, v in osd.items()),
          "moco --with_optimizer=false: weights_only=True loads the full state_dict bit-exact")
    model.load_state_dict(wo["state_dict"])
    with torch.no_grad():
        _, out = m.forward(model.module.encoder_q, golden["input"])
    err = rel_err(out, golden["output"])
    check(err <= 1e-6, "moco: encoder_q head output matches (rel err %.2e)" % err)

    # detectron2: plain pickle.load; the official converter's keys, values and dtypes.
    with open(os.path.join(d, "zip.d2.pkl"), "rb") as f:
        ours = pickle.load(f)
    with open(os.path.join(HERE, "moco_v2_d2.pkl"), "rb") as f:
        ref = pickle.load(f)
    check(ours["__author__"] == "MOCO" and ours["matching_heuristics"] is True,
          "detectron2: __author__ and matching_heuristics")
    check(set(ours["model"]) == set(ref["model"]), "detectron2: the converter's key set")
    check(all(isinstance(v, np.ndarray) and v.dtype == ref["model"][k].dtype and
              v.shape == ref["model"][k].shape and np.array_equal(v, ref["model"][k])
              for k, v in ours["model"].items()), "detectron2: numpy arrays equal, same dtypes")

    # moco-v3: the same keys in moco-v3's registration order, same values and dtypes, and a
    # MoCo_ResNet-shaped module loads the state_dict strictly.
    v3_ours = torch.load(os.path.join(d, "v3.moco_v3.pth"))
    v3_ref = torch.load(os.path.join(HERE, "moco_v3_zip.pth"))
    osd, rsd = v3_ours["state_dict"], v3_ref["state_dict"]
    check(list(osd) == list(rsd), "moco_v3: keys in moco-v3's order")
    check(all(osd[k].dtype == rsd[k].dtype and torch.equal(osd[k], rsd[k]) for k in rsd),
          "moco_v3: tensors equal, same dtypes")
    check(v3_ours["epoch"] == 7 and v3_ours["arch"] == "resnet18", "moco_v3: epoch and arch")
    import make_moco_v3_file as v3
    module = v3.Wrapper(torch.Generator().manual_seed(0))
    module.load_state_dict(osd, strict=True)
    check(True, "moco_v3: loads strictly into a MoCo_ResNet-shaped module")

    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("all interop checks passed")


if __name__ == "__main__":
    main(sys.argv[1])
