#!/usr/bin/env bash
# Data parallelism on one machine: 2 processes x 1 thread (`--nproc_per_node=2`, run.threads 0 =
# cores / ranks) against 1 process x 2 threads, the same config, alternated for ROUNDS rounds:
# the "2 x 1 against 1 x 2" rows of docs/BENCHMARKS.md. Each run trains EPOCHS epochs of STEPS
# steps (no kNN monitor, no random-init baseline); the rate is the mean images_per_sec of
# metrics.csv over the second half of the run, and each rank's share of its step time blocked
# in collectives is read from its last epoch's log line.
#
#   bench/run_data_parallel_benchmarks.sh                         # MoCo v3 quickstart
#   CONFIG=configs/quickstart.pbtxt ROUNDS=3 bench/run_data_parallel_benchmarks.sh
#   DP_WORKERS=1 ...     # data.num_workers of each rank in the 2-process runs
#   PRETRAIN=/path/to/pretrain ...                                # skip the build
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG=${CONFIG:-configs/moco_v3_quickstart.pbtxt}
STEPS=${STEPS:-12}
EPOCHS=${EPOCHS:-4}
ROUNDS=${ROUNDS:-2}
BAZEL=${BAZEL:-bazel}
if [[ -z "${PRETRAIN:-}" ]]; then
  # shellcheck disable=SC2086
  $BAZEL ${BAZEL_STARTUP:-} build //moco/pretrain:pretrain >&2
  PRETRAIN="$($BAZEL ${BAZEL_STARTUP:-} info bazel-bin 2>/dev/null)/moco/pretrain/pretrain"
fi
[[ -x "$PRETRAIN" ]] || { echo "no binary at $PRETRAIN" >&2; exit 1; }
[[ -f "$CONFIG" ]] || { echo "no config at CONFIG=$CONFIG" >&2; exit 1; }
WORK=$(mktemp -d /tmp/dp_bench_XXXX)
trap 'rm -rf "$WORK"' EXIT

make_config() {  # threads, workers (empty: the config's), run_dir -> path of the config
  local out="$WORK/$(basename "$3").pbtxt"
  sed -e "s|^\( *\)epochs: .*|\1epochs: $EPOCHS\n\1max_steps_per_epoch: $STEPS|" \
      -e "s|^\( *\)threads: .*|\1threads: $1|" \
      -e "s|^\( *\)knn_every_epochs: .*|\1knn_every_epochs: 0|" \
      -e "s|^\( *\)log_every_steps: .*|\1log_every_steps: 4|" \
      -e "s|^\( *\)run_dir: .*|\1run_dir: \"$3\"|" "$CONFIG" > "$out"
  [[ -z "$2" ]] || sed -i "s|^\( *\)num_workers: .*|\1num_workers: $2|" "$out"
  grep -q "max_steps_per_epoch: $STEPS" "$out" || { echo "no run.epochs in $CONFIG" >&2; exit 1; }
  echo "$out"
}

rate() {  # run_dir -> mean images_per_sec over the rows of the second half of the run
  awk -F, -v half=$((EPOCHS * STEPS / 2)) '
    NR == 1 { for (i = 1; i <= NF; ++i) if ($i == "images_per_sec") c = i; next }
    c && $1 > half { s += $c; n++ }
    END { if (n) printf "%.1f", s / n; else printf "n/a" }' "$1/metrics.csv"
}

blocked() {  # log -> "r0 X% / r1 Y%" of the last epoch
  grep -o "rank [0-9]*: epoch $EPOCHS spent [0-9.]*%" "$1" |
    sed 's/rank \([0-9]*\): epoch [0-9]* spent /r\1 /' | paste -sd/ - || true
}

echo "# $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores  config $CONFIG, $EPOCHS x $STEPS steps"
for ((round = 1; round <= ROUNDS; ++round)); do
  one="$WORK/r${round}_1x2" two="$WORK/r${round}_2x1"
  "$PRETRAIN" --config="$(make_config 2 "" "$one")" --random_init_baseline=false \
    > "$one.log" 2>&1 || { echo "1 x 2 failed:"; tail -5 "$one.log"; exit 1; }
  "$PRETRAIN" --config="$(make_config 0 "${DP_WORKERS:-}" "$two")" --nproc_per_node=2 \
    --random_init_baseline=false > "$two.log" 2>&1 ||
    { echo "2 x 1 failed:"; tail -5 "$two.log"; exit 1; }
  r1=$(rate "$one") r2=$(rate "$two")
  echo "round $round $(date -u +%H:%M:%S): 1x2 $r1 img/s | 2x1 $r2 img/s, blocked $(blocked "$two.log")" \
    "| ratio $(awk -v a="$r2" -v b="$r1" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }')"
done
