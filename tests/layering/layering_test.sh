#!/bin/bash
# Runs the layering checker's self-test, then the checker on the real dependency graph.
set -euo pipefail
here=$(dirname "$1")
/usr/bin/python3 "$here/check_layering_selftest.py" "$here"
/usr/bin/python3 "$1" "$2"
