#!/usr/bin/env bash
# Runs bench/op_profile_test.py with the system Python (op_profile.py is used by hand with it).
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$1")/op_profile_test.py"
