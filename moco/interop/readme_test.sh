#!/bin/bash
set -euo pipefail
exec /usr/bin/python3 moco/interop/testdata/readme_test.py "$1" "$2"
