#!/usr/bin/env bash
# Interop test (python3 at test time on purpose): an event file written by EventFileWriter is
# decoded by python3-protobuf through the same event.proto, with CRCs checked independently.
set -euo pipefail
if ! /usr/bin/python3 -c "import google.protobuf" 2>/dev/null; then
  echo "SKIPPED: python3-protobuf is not installed (apt-get install python3-protobuf, or run tools/setup.sh)"
  exit 0
fi
writer="$1"
pb2_dir="$(dirname "$2")"       # .../moco/observe/events/event_pb2.py
script="$3"
root="$(cd "$pb2_dir/../../.." && pwd)"
touch "$root/moco/__init__.py" "$root/moco/observe/__init__.py" "$root/moco/observe/events/__init__.py" 2>/dev/null || {
  # Runfiles may be read-only: copy the module into a scratch package.
  root="$TEST_TMPDIR/py"; mkdir -p "$root/moco/observe/events"
  cp "$2" "$root/moco/observe/events/"
  touch "$root/moco/__init__.py" "$root/moco/observe/__init__.py" "$root/moco/observe/events/__init__.py"
}
out="$TEST_TMPDIR/events"; mkdir -p "$out"
file="$("$writer" "$out")"
got="$(PYTHONPATH="$root" /usr/bin/python3 "$script" "$file")"
want="version brain.Event:2
50 loss=8.25 top1=0.125
100 loss=7.5 knn_top1=71.25"
if [[ "$got" != "$want" ]]; then
  echo "decoded:"; echo "$got"; echo "expected:"; echo "$want"; exit 1
fi
echo "PASS: python3-protobuf decoded $file"
