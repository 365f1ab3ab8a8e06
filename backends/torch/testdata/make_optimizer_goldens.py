#!/usr/bin/python3
"""Generates backends/torch/testdata/optimizer_goldens.txt for the LARS and AdamW tests.

Run from the repository root with Debian's Python (torch 1.13):

    /usr/bin/python3 backends/torch/testdata/make_optimizer_goldens.py

Two cases, three steps each, on small float32 tensors with fixed gradients:

  adamw  torch.optim.AdamW itself (amsgrad off, one parameter group, weight decay on every
         parameter), the learning rate changed between steps as a schedule does.
  lars   MoCo v3's LARS (facebookresearch/moco-v3), written out below from its rule: for a
         parameter with more than one dimension, d = g + wd p, q = eta ||p|| / ||d|| (1 when a
         norm is 0), d = q d; for a 1-D parameter d = g; then mu = momentum mu + d (mu starts at
         0) and p -= lr mu. "zero.weight" starts at 0 (||p|| = 0 on the first step) and the
         gradient of "still.weight" is exactly -wd p (||d|| = 0 on every step).

Every hyperparameter and learning rate is a float32 value (the C++ config fields are floats), so
both sides compute from the same numbers.

File format: '#' comment lines, then one tensor per line:
    <name> [d0,d1,...] v0 v1 ...     ("[]" for a scalar; values in C order, "%.9g", which
                                      round-trips float32 exactly)
Names, for <case> in {adamw, lars} and step k in 1..3:
    <case>/hyper/<OptimizerConfig field>   the hyperparameters
    <case>/lr                              [3] the learning rate of each step
    <case>/init/<param>                    the parameters before the first step
    <case>/step<k>/grad/<param>            the gradient given at step k
    <case>/step<k>/param/<param>           the parameters after step k
    <case>/step<k>/state/<entry>           the optimizer state after step k, named as the
                                           C++ Optimizer::ExportState names it
                                           (moco/core/optimizer.h): LARS "<param>" = mu;
                                           AdamW "<param>.exp_avg", ".exp_avg_sq", ".step"
"""

import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optimizer_goldens.txt")
STEPS = 3


def f32(x):
    """The float32 value nearest x, as a Python float (what a C++ float config field holds)."""
    return float(np.float32(x))


def fmt(name, t):
    t = t.detach().to(torch.float32).contiguous()
    shape = "[" + ",".join(str(d) for d in t.shape) + "]"
    vals = " ".join("%.9g" % v for v in t.reshape(-1).tolist())
    return "%s %s %s" % (name, shape, vals)


def make_params(gen):
    return {
        "bn.bias": torch.randn(4, generator=gen),
        "conv.weight": torch.randn(2, 1, 2, 2, generator=gen),
        "fc.weight": torch.randn(3, 4, generator=gen),
        "zero.weight": torch.zeros(2, 3),
    }


def lars_step(params, grads, mus, lr, momentum, wd, eta):
    """MoCo v3's LARS on plain tensors, in float32 as the reference implementation computes."""
    with torch.no_grad():
        for name, p in params.items():
            d = grads[name]
            if p.ndim > 1:
                d = d.add(p, alpha=wd)
                p_norm = torch.norm(p)
                d_norm = torch.norm(d)
                one = torch.ones_like(p_norm)
                q = torch.where(p_norm > 0.0,
                                torch.where(d_norm > 0.0, eta * p_norm / d_norm, one), one)
                d = d.mul(q)
            if name not in mus:
                mus[name] = torch.zeros_like(p)
            mus[name].mul_(momentum).add_(d)
            p.add_(mus[name], alpha=-lr)


def lars_case(lines):
    gen = torch.Generator().manual_seed(1)
    hyper = {"momentum": f32(0.9), "weight_decay": f32(0.05), "lars_trust_coefficient": f32(0.02)}
    lrs = [f32(0.5), f32(0.25), f32(0.75)]
    params = make_params(gen)
    params["still.weight"] = torch.tensor([[1.0, -2.0, 0.5]])
    for k, v in hyper.items():
        lines.append(fmt("lars/hyper/" + k, torch.tensor(v)))
    lines.append(fmt("lars/lr", torch.tensor(lrs)))
    for n, p in params.items():
        lines.append(fmt("lars/init/" + n, p))
    mus = {}
    wd32 = torch.tensor(hyper["weight_decay"], dtype=torch.float32)
    for step in range(1, STEPS + 1):
        grads = {n: torch.randn(p.shape, generator=gen) for n, p in params.items()}
        # Exactly -wd p (the products are exact: p holds powers of two), so d = g + wd p = 0.
        grads["still.weight"] = -(wd32 * params["still.weight"])
        lars_step(params, grads, mus, lrs[step - 1], hyper["momentum"], hyper["weight_decay"],
                  hyper["lars_trust_coefficient"])
        assert float(mus["still.weight"].abs().max()) == 0.0
        prefix = "lars/step%d/" % step
        for n in params:
            lines.append(fmt(prefix + "grad/" + n, grads[n]))
        for n, p in params.items():
            lines.append(fmt(prefix + "param/" + n, p))
        for n, mu in mus.items():
            lines.append(fmt(prefix + "state/" + n, mu))


def adamw_case(lines):
    gen = torch.Generator().manual_seed(2)
    hyper = {"adam_beta1": f32(0.9), "adam_beta2": f32(0.999), "adam_eps": f32(1e-8),
             "weight_decay": f32(0.1)}
    lrs = [f32(0.01), f32(0.02), f32(0.005)]
    params = {n: p.requires_grad_() for n, p in make_params(gen).items()}
    for k, v in hyper.items():
        lines.append(fmt("adamw/hyper/" + k, torch.tensor(v)))
    lines.append(fmt("adamw/lr", torch.tensor(lrs)))
    for n, p in params.items():
        lines.append(fmt("adamw/init/" + n, p))
    opt = torch.optim.AdamW(list(params.values()), lr=lrs[0],
                            betas=(hyper["adam_beta1"], hyper["adam_beta2"]),
                            eps=hyper["adam_eps"], weight_decay=hyper["weight_decay"],
                            amsgrad=False)
    for step in range(1, STEPS + 1):
        grads = {n: torch.randn(p.shape, generator=gen) for n, p in params.items()}
        grads["bn.bias"][1] = 0.0  # an element moved by weight decay alone
        for n, p in params.items():
            p.grad = grads[n].clone()
        for group in opt.param_groups:
            group["lr"] = lrs[step - 1]
        opt.step()
        prefix = "adamw/step%d/" % step
        for n in params:
            lines.append(fmt(prefix + "grad/" + n, grads[n]))
        for n, p in params.items():
            lines.append(fmt(prefix + "param/" + n, p))
        for n, p in params.items():
            st = opt.state[p]
            lines.append(fmt(prefix + "state/" + n + ".exp_avg", st["exp_avg"]))
            lines.append(fmt(prefix + "state/" + n + ".exp_avg_sq", st["exp_avg_sq"]))
            lines.append(fmt(prefix + "state/" + n + ".step", st["step"].reshape(())))


def main():
    torch.set_num_threads(1)
    lines = ["# Written by make_optimizer_goldens.py (torch %s); see its docstring." %
             torch.__version__]
    lars_case(lines)
    adamw_case(lines)
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s (%d tensors)" % (OUT, len(lines) - 1))


if __name__ == "__main__":
    main()
