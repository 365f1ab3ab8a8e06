#!/usr/bin/env bash
# MoCo training step: moco-cpp (bench/step_benchmark, LibTorch and Eigen backends) against the
# same step in PyTorch (bench/moco_step_pytorch.py, /usr/bin/python3), side by side in one run,
# interleaved (C++ then Python per configuration), then a table with ratios.
#
#   bench/run_step_benchmarks.sh                 # from the repository root; ~10 min on 2 cores
#   STEPS_R18=3 STEPS_QS=5 bench/run_step_benchmarks.sh
#   BAZEL_STARTUP="--output_base=/tmp/ob" bench/run_step_benchmarks.sh
#   STEP_BENCHMARK=/path/to/step_benchmark bench/run_step_benchmarks.sh   # skip the build
#
# Configurations: resnet18 (CIFAR stem, width 1, 1x32x32, K=4096, bn_splits 8, MLP head) at
# batch 64 and 256 with 1 and 2 threads, compute only; the quickstart encoder
# (configs/quickstart.pbtxt: width 0.25, 1x28x28, batch 256) compute only and end to end
# (loader / DataLoader with 2 workers) at 2 threads; the Eigen backend on the quickstart encoder
# (compute, 2 threads); and the PyTorch script once more with glibc's malloc tuned as
# moco-cpp's binaries tune it (resnet18 batch 256, 2 threads), to separate that effect.
# Raw lines (BENCH ...) go to $OUT (default /tmp/step_benchmarks.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

WARMUP=${WARMUP:-1}
STEPS_R18=${STEPS_R18:-3}
STEPS_QS=${STEPS_QS:-5}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=${OUT:-/tmp/step_benchmarks.txt}
BAZEL=${BAZEL:-bazel}
# shellcheck disable=SC2086
if [[ -z "${STEP_BENCHMARK:-}" ]]; then
  $BAZEL ${BAZEL_STARTUP:-} build //bench:step_benchmark >&2
  STEP_BENCHMARK="$($BAZEL ${BAZEL_STARTUP:-} info bazel-bin 2>/dev/null)/bench/step_benchmark"
fi
[[ -x "$STEP_BENCHMARK" ]] || { echo "no binary at $STEP_BENCHMARK" >&2; exit 1; }
PY="$PYTHON bench/moco_step_pytorch.py"
: > "$OUT"

echo "# $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores  $(uptime | sed 's/.*load/load/')" | tee -a "$OUT"
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" | tee -a "$OUT"

run() {  # label, command...
  local label=$1
  shift
  echo "+ $*" >&2
  "$@" 2>/dev/null | grep -E '^(BENCH|PHASES)' | sed "s/^/$label /" | tee -a "$OUT"
}

R18="--arch=resnet18 --cifar_stem=true --width=1 --image_size=32 --channels=1 --queue=4096 --bn_splits=8"
R18_PY="--cifar_stem=1 --width=1 --image_size=32 --channels=1 --queue=4096 --bn_splits=8"
for batch in 64 256; do
  for threads in 1 2; do
    label="r18_b${batch}_t${threads}"
    run "$label" "$STEP_BENCHMARK" --config=configs/quickstart.pbtxt $R18 --batch=$batch \
      --threads=$threads --mode=compute --warmup=$WARMUP --steps=$STEPS_R18
    run "$label" $PY $R18_PY --batch=$batch --threads=$threads --mode=compute \
      --warmup=$WARMUP --steps=$STEPS_R18
  done
done
# The PyTorch step with the malloc settings that moco-cpp applies with mallopt().
run "r18_b256_t2_pymalloc" env GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824 \
  $PY $R18_PY --batch=256 --threads=2 --mode=compute --warmup=$WARMUP --steps=$STEPS_R18

# The quickstart encoder: the C++ binary reads configs/quickstart.pbtxt; the Python script gets
# the same settings, read from that file here.
QS=configs/quickstart.pbtxt
cfg() {  # field, default: the first "field: value" of the quickstart config
  local v
  v=$(sed -n "s/^ *$1: *\([^ #]*\).*/\1/p" "$QS" | head -n1)
  echo "${v:-$2}"
}
QS_PY="--cifar_stem=$( [[ $(cfg cifar_stem false) == true ]] && echo 1 || echo 0) \
  --width=$(cfg width_multiplier 1) --image_size=$(cfg image_size 224) \
  --channels=$(cfg in_channels 3) --batch=$(cfg batch_size 256) --queue=$(cfg queue_size 65536) \
  --bn_splits=$(cfg bn_splits 8) --feature_dim=$(cfg feature_dim 128) \
  --mlp_head=$( [[ $(cfg mlp_head true) == true ]] && echo 1 || echo 0) \
  --momentum=$(cfg momentum 0.999) --temperature=$(cfg temperature 0.2) --lr=$(cfg lr 0.03) \
  --weight_decay=$(cfg weight_decay 1e-4) --num_workers=$(cfg num_workers 2) \
  --crop_min=$(cfg crop_scale_min 0.2) --mean=$(cfg normalize_mean 0) --std=$(cfg normalize_std 1) \
  --data=$(cfg train_path /usr/share/datasets/fashion-mnist | tr -d '\"')"
for mode in compute e2e; do
  run "qs_b$(cfg batch_size 256)_${mode}_t2" "$STEP_BENCHMARK" --config=$QS --threads=2 \
    --mode=$mode --warmup=$WARMUP --steps=$STEPS_QS
  run "qs_b$(cfg batch_size 256)_${mode}_t2" $PY $QS_PY --threads=2 --mode=$mode --warmup=$WARMUP --steps=$STEPS_QS
done
run "qs_b$(cfg batch_size 256)_compute_t2_eigen" "$STEP_BENCHMARK" --config=$QS --threads=2 \
  --backend=eigen --mode=compute --warmup=$WARMUP --steps=$STEPS_QS || true

echo "# done $(date -u '+%H:%M UTC')  $(uptime | sed 's/.*load/load/')" | tee -a "$OUT"

# The table: one row per configuration, C++ (torch backend) against Python.
awk '
function get(line, key,   m) { if (match(line, " " key "=[^ ]+")) { m = substr(line, RSTART + length(key) + 2, RLENGTH - length(key) - 2); return m } return "" }
$2 == "BENCH" {
  label = $1; impl = get($0, "impl"); be = get($0, "backend")
  key = label "|" impl
  img[key] = get($0, "img_per_s"); gf[key] = get($0, "gflop_per_s"); pct[key] = get($0, "pct_of_peak"); if (pct[key] == "") pct[key] = get($0, "pct_of_200")
  if (!(label in seen)) { seen[label] = 1; order[++n] = label }
}
END {
  printf "\n| configuration | C++ img/s | Python img/s | C++ / Python | C++ GFLOP/s (%% of peak) | Python GFLOP/s (%% of peak) |\n"
  printf "|---|---:|---:|---:|---:|---:|\n"
  for (i = 1; i <= n; i++) {
    l = order[i]; c = l "|cpp"; p = l "|python"; base = l; sub(/_(eigen|pymalloc)$/, "", base)
    ratio = (img[c] != "" && img[p] != "") ? sprintf("%.2fx", img[c] / img[p]) : "-"
    if (l ~ /_eigen$/ && img[base "|cpp"] != "")
      ratio = sprintf("eigen / torch C++: %.2fx", img[c] / img[base "|cpp"])
    if (l ~ /_pymalloc$/ && img[base "|cpp"] != "")
      ratio = sprintf("%.2fx (vs C++ of %s)", img[base "|cpp"] / img[p], base)
    printf "| %s | %s | %s | %s | %s | %s |\n", l,
      (img[c] != "" ? img[c] : "-"), (img[p] != "" ? img[p] : "-"), ratio,
      (gf[c] != "" ? gf[c] " (" pct[c] "%)" : "-"), (gf[p] != "" ? gf[p] " (" pct[p] "%)" : "-")
  }
}' "$OUT"
