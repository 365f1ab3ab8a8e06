#!/usr/bin/env python3
"""Checks bench/op_profile.py's self-time arithmetic on a hand-made trace: nested calls on one
thread, a second thread, and LibTorch's trailing comma before the closing bracket."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import op_profile  # noqa: E402


def event(name, ts, dur, tid=1):
    return {"ph": "X", "name": name, "ts": ts, "dur": dur, "tid": tid}


def main():
    events = [
        event("outer", 0, 100),
        event("inner", 10, 30),   # direct child of outer
        event("inner", 50, 10),   # direct child of outer, parent of leaf
        event("leaf", 52, 3),
        event("inner", 0, 20, tid=2),  # another thread: not inside outer
        {"ph": "M", "name": "thread_name"},  # metadata events are ignored
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(json.dumps(events)[:-1] + ",\n]")  # trailing comma, as LibTorch writes
        path = f.name
    loaded = op_profile.load_events(path)
    os.unlink(path)
    if len(loaded) != 5:
        raise SystemExit(f"expected 5 complete events, loaded {len(loaded)}")
    totals = op_profile.self_times(loaded)
    got = {name: (calls, us) for name, (calls, us) in totals.items()}
    want = {"outer": (1, 60.0), "inner": (3, 30.0 + 7.0 + 20.0), "leaf": (1, 3.0)}
    if got != want:
        raise SystemExit(f"self times {got}, expected {want}")
    print("op_profile self times correct:", got)


if __name__ == "__main__":
    main()
