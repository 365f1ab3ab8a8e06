#!/usr/bin/env bash
# Smoke test of bench/run_precision_benchmarks.sh: one round of the quickstart encoder, 1 timed
# step per run, the built step_benchmark as both binaries. Every row must produce a BENCH line
# and a time, and the summary must list all six rows with a ratio.
set -euo pipefail
script=$1 step_benchmark=$2
out="$TEST_TMPDIR/precision.txt"
log="$TEST_TMPDIR/precision.log"
STEP_BENCHMARK="$PWD/$step_benchmark" BASELINE="$PWD/$step_benchmark" ENCODERS=qs ROUNDS=1 \
  STEPS=1 THREADS=1 OUT="$out" bash "$script" > "$log" 2>&1 || { cat "$log"; exit 1; }
cat "$log"
fail() { echo "FAIL: $*" >&2; exit 1; }
if ! grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then
  # The C++ bf16 rows are refused by the config validator here; the fp32 ones must still run.
  grep -qE '^  C\+\+ fp32 NCHW +[0-9]+\.[0-9]{4} s/step' "$log" || fail "no fp32 row"
  echo "PASS (fp32 rows only: this CPU has no bf16)"
  exit 0
fi
[[ $(grep -c ' | BENCH ' "$out") == 6 ]] || fail "expected 6 BENCH lines in $out"
! grep -q 'FAILED\|failed' "$log" || fail "a run failed"
for row in "C++ fp32 NCHW" "C++ bf16 CL" "C++ bf16 NCHW" "PyTorch fp32" "PyTorch bf16 CL" \
  "C++ bf16 CL (baseline)"; do
  grep -qE "^  ${row//[()+]/.} +[0-9]+\.[0-9]{4} s/step  [0-9]+\.[0-9]{2}x of C\+\+ bf16 CL time" \
    "$log" || fail "no summary row for '$row'"
done
grep -q 'precision=bf16 channels_last=1' "$out" || fail "no bf16 channels-last run in $out"
echo PASS
