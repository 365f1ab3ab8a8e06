#!/usr/bin/env python3
"""Checks the project's layering on a `bazel query --output=xml` dump of the dependency graph.

Usage: check_layering.py GRAPH.xml

Fails (exit 1, one line per problem) when
  - the package-level graph of the project's own packages has a cycle, or
  - a core package depends on anything outside the core (a pipeline, a dataset reader, an
    evaluation, a concrete backend), or
  - a backend package depends on anything but the core and other backend packages.
//third_party (system libraries) is allowed everywhere.
"""
import sys
import xml.etree.ElementTree as ET

CORE = ("moco/config", "moco/core", "moco/methods", "moco/schedules", "moco/validation")
BACKENDS = ("backends",)


def package_of(label):
    """'//moco/core:host_array' -> 'moco/core'; external or generated-file labels -> None."""
    if not label.startswith("//"):
        return None
    return label[2:].split(":", 1)[0]


def within(package, roots):
    return any(package == r or package.startswith(r + "/") for r in roots)


def package_edges(xml_text):
    """{package: {package it depends on}} over the project's rules (third_party excluded)."""
    edges = {}
    for rule in ET.fromstring(xml_text).iter("rule"):
        source = package_of(rule.get("name", ""))
        if source is None or source.startswith("third_party"):
            continue
        targets = edges.setdefault(source, set())
        for dep in rule.iter("rule-input"):
            target = package_of(dep.get("name", ""))
            if target is not None and target != source and not target.startswith("third_party"):
                targets.add(target)
    return edges


def find_cycle(edges):
    """One package cycle as a list [a, b, ..., a], or None."""
    state = {}  # 1 = on the stack, 2 = done
    stack = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if state.get(node) is None:
            found = visit(node)
            if found:
                return found
    return None


def layering_problems(edges):
    problems = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            if within(source, CORE) and not within(target, CORE):
                problems.append(f"core package //{source} depends on //{target}")
            if within(source, BACKENDS) and not within(target, CORE + BACKENDS):
                problems.append(f"backend package //{source} depends on //{target}")
    return problems


def main(argv):
    with open(argv[1]) as f:
        edges = package_edges(f.read())
    if not any(within(p, CORE) for p in edges) or not any(within(p, BACKENDS) for p in edges):
        print(f"{argv[1]}: the graph holds no core or no backend package; wrong query?")
        return 1
    problems = layering_problems(edges)
    cycle = find_cycle(edges)
    if cycle:
        problems.append("package cycle: " + " -> ".join("//" + p for p in cycle))
    for p in problems:
        print(p)
    if not problems:
        print(f"layering ok: {len(edges)} packages, no cycle, core and backends clean")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
