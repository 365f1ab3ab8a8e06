#!/usr/bin/env python3
"""Tabulates a LibTorch op profile by self time: the chrome-trace JSON that
`bench/step_benchmark --torch_profile=FILE` writes (LibTorch's legacy profiler, one complete
event per op call with its thread, start and duration; ops nest inside the ops that call them).

    bazel-bin/bench/step_benchmark --config=... --steps=3 --torch_profile=/tmp/trace.json
    /usr/bin/python3 bench/op_profile.py /tmp/trace.json --steps=3 [--top=15]

Self time of an op call = its duration minus that of the op calls directly inside it on the
same thread. Prints, per op name: calls per step, self ms per step, share of all self time.
"""
import argparse
import collections
import json
import sys


def load_events(path):
    with open(path) as f:
        text = f.read()
    try:
        events = json.loads(text)
    except json.JSONDecodeError:
        # Tolerate a trailing comma before the closing bracket.
        events = json.loads(text.rstrip().rstrip("]").rstrip().rstrip(",") + "]")
    if isinstance(events, dict):
        events = events.get("traceEvents", [])
    return [e for e in events if e.get("ph") == "X" and "dur" in e]


def self_times(events):
    """(name -> [calls, self microseconds]) over all threads."""
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[e.get("tid")].append(e)
    totals = collections.defaultdict(lambda: [0, 0.0])
    for thread_events in by_thread.values():
        # Parents before children: earlier start first, the longer of two equal starts first.
        thread_events.sort(key=lambda e: (float(e["ts"]), -float(e["dur"])))
        stack = []  # [end, name, self]
        def close(entry):
            totals[entry[1]][1] += entry[2]
        for e in thread_events:
            start, dur = float(e["ts"]), float(e["dur"])
            while stack and stack[-1][0] <= start:
                close(stack.pop())
            if stack:
                stack[-1][2] -= dur
            totals[e["name"]][0] += 1
            stack.append([start + dur, e["name"], dur])
        while stack:
            close(stack.pop())
    return totals


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("trace")
    p.add_argument("--steps", type=int, default=1, help="steps the trace covers")
    p.add_argument("--top", type=int, default=15)
    a = p.parse_args()
    events = load_events(a.trace)
    if not events:
        raise SystemExit(f"{a.trace}: no complete ('ph': 'X') events")
    totals = self_times(events)
    all_self = sum(t[1] for t in totals.values())
    rows = sorted(totals.items(), key=lambda kv: -kv[1][1])
    print(f"{'op':<44} {'calls/step':>10} {'self ms/step':>12} {'share':>7}")
    for name, (calls, us) in rows[: a.top]:
        print(f"{name[:44]:<44} {calls / a.steps:>10.1f} {us / 1e3 / a.steps:>12.1f} "
              f"{100 * us / all_self:>6.1f}%")
    rest = sum(t[1] for _, t in rows[a.top:])
    print(f"{'(other ops)':<44} {'':>10} {rest / 1e3 / a.steps:>12.1f} {100 * rest / all_self:>6.1f}%")
    print(f"{'all ops, self time':<44} {'':>10} {all_self / 1e3 / a.steps:>12.1f}")


if __name__ == "__main__":
    sys.exit(main())
