#!/bin/bash
# Runs the libFuzzer targets of //fuzz (docs/FUZZING.md) for MINUTES each, one after another,
# and copies every crasher (crash-*, oom-*, timeout-*, leak-*) into the target's committed
# corpus, fuzz/corpus/<name>/, where the replay tests pick it up as a regression input.
#
#   tools/fuzz.sh [MINUTES=10] [TARGET...]      (TARGET: idx, cifar, jpeg, ...; default all)
#
# Run from the repository root. Builds //fuzz/... with --config=fuzz (clang, ASan+UBSan) in
# its own output base (FUZZ_OUTPUT_BASE, default /tmp/ob_fuzz_clang) so that the normal build
# keeps its toolchain. The growing working corpus lives in FUZZ_WORK (default
# /tmp/moco_fuzz_work/<name>; kept between runs, never committed). Resource limits are part of
# the readers' contract: -rss_limit_mb=2048 and -malloc_limit_mb=512 (no single allocation over
# 512 MiB for inputs of at most -max_len bytes), -timeout=10 s per input.
# Prints one summary line per target (seconds, executions, coverage, features, result) and
# exits 1 if any target found a crasher.
set -u
MINUTES=${1:-10}
shift
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(idx idx_gzip cifar jpeg png checkpoint experiment_config
                                     eval_config torch_file)
OB=${FUZZ_OUTPUT_BASE:-/tmp/ob_fuzz_clang}
WORK=${FUZZ_WORK:-/tmp/moco_fuzz_work}
[ -f fuzz/BUILD ] || { echo "run from the repository root"; exit 2; }
# --symlink_prefix=/: no bazel-* links, which would otherwise point into this output base and
# make the normal build descend into them.
nice -n 10 bazel --output_base="$OB" build --config=fuzz --symlink_prefix=/ --jobs=2 //fuzz/... 2>&1 | tail -1
BIN=$(bazel --output_base="$OB" info --config=fuzz bazel-bin 2> /dev/null)/fuzz
found=0
for t in "${TARGETS[@]}"; do
  dir=$WORK/$t
  mkdir -p "$dir/corpus" "$dir/artifacts" "$dir/tmp"
  log=$dir/fuzz.log
  start=$(date +%s)
  TMPDIR=$dir/tmp ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    nice -n 10 "$BIN/${t}_fuzz" -max_total_time=$((MINUTES * 60)) -rss_limit_mb=2048 \
    -malloc_limit_mb=512 -timeout=10 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" "$dir/corpus" "fuzz/corpus/$t" > "$log" 2>&1
  rc=$?
  secs=$(($(date +%s) - start))
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$')
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*')
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*')
  result=clean
  for a in "$dir"/artifacts/*; do
    [ -f "$a" ] || continue
    cp "$a" "fuzz/corpus/$t/$(basename "$a")"
    result="found $(basename "$a") (copied to fuzz/corpus/$t; log $log)"
    found=1
  done
  rm -f "$dir"/artifacts/*
  [ "$rc" = 0 ] || [ "$result" != clean ] || result="exit $rc (log $log)"
  echo "$t: ${secs}s, ${execs:-?} execs, cov ${cov:-?}, ft ${ft:-?}, $result"
done
exit $found
