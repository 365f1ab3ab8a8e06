#!/usr/bin/env bash
# bf16 / channels-last against fp32, moco-cpp against PyTorch autocast, in one sitting: the
# tables of docs/BENCHMARKS.md "bf16 mixed precision and channels-last". For each encoder
# (ResNet-50 224 px b32 K65536; ResNet-18 CIFAR 1x32x32 b256 K4096; the quickstart encoder
# b128) and each round, in turn: C++ fp32 NCHW, C++ bf16 channels-last, C++ bf16 NCHW, PyTorch
# fp32 and PyTorch autocast bf16 + channels-last, both with glibc's malloc tuned as moco-cpp's
# binaries tune it (mallopt). Compute mode (fixed random batches), MoCo v2 step, 2 threads.
#
#   bench/run_precision_benchmarks.sh                     # from the repository root
#   ROUNDS=3 ENCODERS="r50" bench/run_precision_benchmarks.sh
#   STEPS=1 ENCODERS=qs ROUNDS=1 bench/run_precision_benchmarks.sh   # timed steps per run (default 3; quickstart 10)
#   STEP_BENCHMARK=/path/to/step_benchmark BASELINE=/path/to/older/step_benchmark ...
#       # BASELINE adds a "C++ bf16 CL (baseline)" row: an A/B of two builds in one sitting
#
# Prints one line per run (seconds per step) and a table per encoder; raw BENCH lines in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-2}
ENCODERS=${ENCODERS:-"r50 r18 qs"}
THREADS=${THREADS:-2}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=${OUT:-/tmp/precision_benchmarks.txt}
BAZEL=${BAZEL:-bazel}
if [[ -z "${STEP_BENCHMARK:-}" ]]; then
  # shellcheck disable=SC2086
  $BAZEL ${BAZEL_STARTUP:-} build //bench:step_benchmark >&2
  STEP_BENCHMARK="$($BAZEL ${BAZEL_STARTUP:-} info bazel-bin 2>/dev/null)/bench/step_benchmark"
fi
[[ -x "$STEP_BENCHMARK" ]] || { echo "no binary at $STEP_BENCHMARK" >&2; exit 1; }
[[ -z "${BASELINE:-}" || -x "$BASELINE" ]] || { echo "no binary at BASELINE=$BASELINE" >&2; exit 1; }
TUNED="GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824"

# The ResNet-50 recipe on CPU: the ImageNet config with its device set to cpu.
R50_CONFIG=$(mktemp /tmp/r50_cpu_XXXX.pbtxt)
trap 'rm -f "$R50_CONFIG"' EXIT
sed 's/device: "cuda"/device: "cpu"/' configs/moco_v2_imagenet.pbtxt > "$R50_CONFIG"

cpp_args() {  # encoder -> step_benchmark flags
  case $1 in
    r50) echo "--config=$R50_CONFIG --batch=32 --steps=${STEPS:-3}" ;;
    r18) echo "--config=configs/quickstart.pbtxt --arch=resnet18 --cifar_stem=true --width=1 \
--image_size=32 --channels=1 --queue=4096 --bn_splits=8 --batch=256 --steps=${STEPS:-3}" ;;
    qs) echo "--config=configs/quickstart.pbtxt --batch=128 --steps=${STEPS:-10}" ;;
  esac
}
py_args() {  # encoder -> moco_step_pytorch.py flags (the same step)
  case $1 in
    r50) echo "--arch=resnet50 --image_size=224 --channels=3 --cifar_stem=0 --width=1 --batch=32 \
--queue=65536 --bn_splits=8 --steps=${STEPS:-3}" ;;
    r18) echo "--cifar_stem=1 --width=1 --image_size=32 --channels=1 --queue=4096 --bn_splits=8 \
--batch=256 --steps=${STEPS:-3}" ;;
    qs) echo "--cifar_stem=1 --width=0.25 --image_size=28 --channels=1 --queue=4096 --bn_splits=8 \
--momentum=0.99 --temperature=0.1 --lr=0.06 --weight_decay=5e-4 --batch=128 --steps=${STEPS:-10}" ;;
  esac
}

: > "$OUT"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" | tee -a "$OUT"
echo "# amx: $(grep -o -m1 'amx_bf16' /proc/cpuinfo || echo none)  binary: $STEP_BENCHMARK" | tee -a "$OUT"

declare -A SUM COUNT
run() {  # encoder, row label, command...
  local enc=$1 label=$2
  shift 2
  local line sec
  line=$(env "$@" 2>/dev/null | grep '^BENCH' | tail -n1 || true)
  echo "$enc | $label | $line" >> "$OUT"
  sec=$(sed -n 's/.*sec_per_step=\([0-9.]*\).*/\1/p' <<< "$line")
  echo "$(date -u +%H:%M:%S) $enc | $label | ${sec:-FAILED} s/step"
  [[ -n "$sec" ]] || return 0
  SUM["$enc|$label"]=$(awk -v a="${SUM["$enc|$label"]:-0}" -v b="$sec" 'BEGIN{print a+b}')
  COUNT["$enc|$label"]=$(( ${COUNT["$enc|$label"]:-0} + 1 ))
}

ROWS=("C++ fp32 NCHW" "C++ bf16 CL" "C++ bf16 NCHW" "PyTorch fp32" "PyTorch bf16 CL")
[[ -n "${BASELINE:-}" ]] && ROWS+=("C++ bf16 CL (baseline)")
for enc in $ENCODERS; do
  cpp=$(cpp_args "$enc")
  py=$(py_args "$enc")
  for ((round = 1; round <= ROUNDS; ++round)); do
    # shellcheck disable=SC2086
    {
      run "$enc" "C++ fp32 NCHW" "$STEP_BENCHMARK" $cpp --threads=$THREADS --mode=compute
      run "$enc" "C++ bf16 CL" "$STEP_BENCHMARK" $cpp --threads=$THREADS --mode=compute \
        --precision=bf16 --channels_last
      [[ -z "${BASELINE:-}" ]] || run "$enc" "C++ bf16 CL (baseline)" "$BASELINE" $cpp \
        --threads=$THREADS --mode=compute --precision=bf16 --channels_last
      run "$enc" "C++ bf16 NCHW" "$STEP_BENCHMARK" $cpp --threads=$THREADS --mode=compute \
        --precision=bf16
      run "$enc" "PyTorch fp32" $TUNED $PYTHON bench/moco_step_pytorch.py $py \
        --threads=$THREADS --mode=compute
      run "$enc" "PyTorch bf16 CL" $TUNED $PYTHON bench/moco_step_pytorch.py $py \
        --threads=$THREADS --mode=compute --amp bf16 --channels_last
    }
  done
done

echo
for enc in $ENCODERS; do
  best="${SUM["$enc|C++ bf16 CL"]:-}"
  [[ -n "$best" ]] && best=$(awk -v s="$best" -v c="${COUNT["$enc|C++ bf16 CL"]}" 'BEGIN{print s/c}')
  echo "$enc: mean s/step over $ROUNDS rounds, and each row against C++ bf16 CL"
  for row in "${ROWS[@]}"; do
    key="$enc|$row"
    if [[ -z "${COUNT[$key]:-}" ]]; then printf '  %-24s  failed\n' "$row"; continue; fi
    awk -v r="$row" -v s="${SUM[$key]}" -v c="${COUNT[$key]}" -v b="${best:-0}" \
      'BEGIN{m=s/c; printf "  %-24s %8.4f s/step  %s\n", r, m, (b>0 ? sprintf("%.2fx of C++ bf16 CL time", m/b) : "")}'
  done
done | tee -a "$OUT"
