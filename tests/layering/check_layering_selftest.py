#!/usr/bin/env python3
"""The checker itself must catch what it claims to: a cycle and each kind of backwards edge."""
import sys

sys.path.insert(0, sys.argv[1])
import check_layering as c  # noqa: E402


def graph(*rules):
    body = "".join(
        f'<rule class="cc_library" name="{name}">'
        + "".join(f'<rule-input name="{d}"/>' for d in deps) + "</rule>"
        for name, deps in rules)
    return f"<query>{body}</query>"


clean = c.package_edges(graph(("//moco/core:a", ["//third_party:absl"]),
                              ("//backends/eigen:b", ["//moco/core:a"]),
                              ("//eval:e", ["//backends/eigen:b", "//moco/core:a"])))
assert c.find_cycle(clean) is None
assert c.layering_problems(clean) == []

cyclic = c.package_edges(graph(("//eval:e", ["//moco/pretrain:p"]),
                               ("//moco/pretrain:p", ["//eval:f"])))
assert c.find_cycle(cyclic) == ["eval", "moco/pretrain", "eval"], c.find_cycle(cyclic)

core_up = c.package_edges(graph(("//moco/core:a", ["//data:d"])))
assert c.layering_problems(core_up) == ["core package //moco/core depends on //data"]

backend_up = c.package_edges(graph(("//backends/torch:t", ["//eval:e"])))
assert c.layering_problems(backend_up) == ["backend package //backends/torch depends on //eval"]
print("checker self-test ok")
