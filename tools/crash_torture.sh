#!/bin/bash
# Crash torture (issue 18): kill -9 a tiny pretraining run at random moments, including inside
# checkpoint writes (MOCO_TEST_CRASH_AT hook), resume it each time, and check that
#   - every checkpoint on disk loads after every kill,
#   - the run finishes (exit 0),
#   - metrics.csv has each step exactly once,
#   - the final checkpoint is bitwise equal to an uninterrupted run's (tests/compare_checkpoints).
#
#   tools/crash_torture.sh [KILLS=20] [PRETRAIN_BIN] [COMPARE_BIN]
# Binaries default to bazel-bin/moco/pretrain/pretrain and bazel-bin/tests/compare_checkpoints
# (bazel build //moco/pretrain:pretrain //tests:compare_checkpoints first). Uses Fashion-MNIST
# from /usr/share/datasets/fashion-mnist unless TORTURE_DATA names an IDX folder;
# TORTURE_IMAGES=N trains and monitors on the first N images of each split only (a fast run).
# TORTURE_EPOCHS (default 12) sets the run's length. At least one kill is inside a checkpoint
# write. Kill choices are deterministic given TORTURE_SEED (default 1); the moments are not.
# Prints a summary; exits 1 on any failure.
set -u
KILLS=${1:-20}
PRETRAIN=${2:-bazel-bin/moco/pretrain/pretrain}
COMPARE=${3:-bazel-bin/tests/compare_checkpoints}
DATA=${TORTURE_DATA:-/usr/share/datasets/fashion-mnist}
RANDOM=${TORTURE_SEED:-1}
EPOCHS=${TORTURE_EPOCHS:-12}
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/crash_torture.XXXXXX")
fail() { echo "FAIL: $*"; exit 1; }

if [ -n "${TORTURE_IMAGES:-}" ]; then  # the first N images and labels of each split, as IDX
  be32() { printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))"
           printf "\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"; }
  mkdir -p "$WORK/data"
  for split in train t10k; do
    for kind in images labels; do
      src=$(ls "$DATA/$split-$kind-idx"[13]-ubyte* 2> /dev/null | head -1)
      [ -n "$src" ] || fail "no $split $kind IDX file in $DATA"
      out=$WORK/data/$(basename "${src%.gz}")
      if [ $kind = images ]; then { be32 2051; be32 "$TORTURE_IMAGES"; be32 28; be32 28; } > "$out"
        skip=16; len=$((TORTURE_IMAGES * 784))
      else { be32 2049; be32 "$TORTURE_IMAGES"; } > "$out"; skip=8; len=$TORTURE_IMAGES; fi
      { if [ "${src%.gz}" != "$src" ]; then gzip -dc "$src"; else cat "$src"; fi; } |
        tail -c +$((skip + 1)) | head -c "$len" >> "$out"
      [ "$(wc -c < "$out")" = $((skip + len)) ] || fail "$src has fewer than $TORTURE_IMAGES records"
    done
  done
  DATA=$WORK/data
fi

cat > "$WORK/tiny.pbtxt" <<PB
data { dataset: IDX train_path: "$DATA" image_size: 28 num_workers: 1
       augmentation { preset: CIFAR normalize_mean: 0.3 normalize_std: 0.3 } }
model { arch: "resnet18" cifar_stem: true width_multiplier: 0.0625 in_channels: 1 feature_dim: 16 }
moco { queue_size: 48 momentum: 0.9 temperature: 0.2 bn_splits: 4 }
optimizer { lr: 0.05 weight_decay: 5e-4 schedule: COSINE }
run { epochs: $EPOCHS batch_size: 16 seed: 11 threads: 1 log_every_steps: 1
      knn_every_epochs: 0 max_steps_per_epoch: 2 }
backend { name: "torch" }
PB

run() {  # run DIR [extra flags]: the pretraining binary, quiet
  local dir=$1; shift
  "$PRETRAIN" --config="$WORK/tiny.pbtxt" --run_dir="$dir" --random_init_baseline=false "$@" \
    > "$dir.log" 2>&1
}
# launch DIR [extra flags]: the same in the background, PID = the pretraining process itself
# (not a subshell: killing a subshell would leave the run going next to its own resume).
launch() {
  local dir=$1; shift
  "$PRETRAIN" --config="$WORK/tiny.pbtxt" --run_dir="$dir" --random_init_baseline=false "$@" \
    > "$dir.log" 2>&1 &
  PID=$!
}

check_loadable() {  # every checkpoint file in DIR reads
  local f
  for f in "$1"/checkpoint.ckpt "$1"/checkpoint.prev.ckpt; do
    [ -e "$f" ] || continue
    "$COMPARE" "$f" "$f" > /dev/null 2>&1 || fail "unloadable checkpoint $f after kill $2"
    LOADED=$((LOADED + 1))
  done
}

mkdir -p "$WORK/ref" "$WORK/tort"
T0=$(date +%s.%N)
run "$WORK/ref" || fail "uninterrupted run failed: $(tail -3 "$WORK/ref.log")"
T_REF=$(echo "$(date +%s.%N) - $T0" | bc)
POINTS=(after_write after_fsync after_prev after_rename)
LOADED=0; HOOKED=0; SLEPT=0; TMP_SEEN=0
for ((k = 1; k <= KILLS; k++)); do
  flags=()
  [ -e "$WORK/tort/checkpoint.ckpt" ] || [ -e "$WORK/tort/checkpoint.prev.ckpt" ] && flags=(--resume)
  if ((RANDOM % 3 == 0)) || ((k == KILLS && HOOKED == 0)); then
    # The process kills itself inside a checkpoint write (every run writes at least one).
    point=${POINTS[$((RANDOM % 4))]}
    MOCO_TEST_CRASH_AT=$point run "$WORK/tort" "${flags[@]}"
    rc=$?
    [ "$rc" = 137 ] || fail "kill $k: the $point hook did not kill the run (exit $rc): $(tail -3 "$WORK/tort.log")"
    HOOKED=$((HOOKED + 1))
  else  # kill -9 from outside at a random moment of the run
    launch "$WORK/tort" "${flags[@]}"
    sleep "$(echo "scale=3; $T_REF * ($RANDOM % 1000) / 1000" | bc)"
    kill -9 "$PID" 2> /dev/null
    wait "$PID" 2> /dev/null
    rc=$?
    [ "$rc" = 137 ] || [ "$rc" = 0 ] || fail "kill $k: run exited $rc: $(tail -3 "$WORK/tort.log")"
    SLEPT=$((SLEPT + 1))
  fi
  TMP_SEEN=$((TMP_SEEN + $(ls -A "$WORK/tort" | grep -c '^\.checkpoint\.ckpt\.tmp\.' || true)))
  check_loadable "$WORK/tort" "$k"
  if [ "$rc" = 0 ]; then  # finished before the kill: start again from scratch
    rm -rf "$WORK/tort"; mkdir -p "$WORK/tort"
  fi
done
flags=()
[ -e "$WORK/tort/checkpoint.ckpt" ] || [ -e "$WORK/tort/checkpoint.prev.ckpt" ] && flags=(--resume)
run "$WORK/tort" "${flags[@]}" || fail "final resume failed: $(tail -3 "$WORK/tort.log")"
check_loadable "$WORK/tort" final
"$COMPARE" "$WORK/ref/checkpoint.ckpt" "$WORK/tort/checkpoint.ckpt" > "$WORK/compare.txt" 2>&1 ||
  fail "final state differs: $(cat "$WORK/compare.txt")"
# metrics.csv: the same steps as the uninterrupted run, each once, with the same losses.
cut -d, -f1-3 "$WORK/ref/metrics.csv" > "$WORK/ref.steps"
cut -d, -f1-3 "$WORK/tort/metrics.csv" > "$WORK/tort.steps"
dups=$(tail -n +2 "$WORK/tort.steps" | cut -d, -f1 | sort | uniq -d | wc -l)
[ "$dups" = 0 ] || fail "metrics.csv has $dups duplicated steps"
cmp -s "$WORK/ref.steps" "$WORK/tort.steps" || fail "metrics.csv steps/losses differ: $(diff "$WORK/ref.steps" "$WORK/tort.steps" | head -5)"
leftover=$(ls -A "$WORK/tort" | grep -c '^\.checkpoint\.ckpt\.tmp\.' || true)
echo "crash torture OK: $KILLS kills ($SLEPT kill -9, $HOOKED in-write hook), $LOADED checkpoint loads," \
  "0 duplicate/missing metrics rows ($(($(wc -l < "$WORK/ref.steps") - 1)) steps)," \
  "final state $(cat "$WORK/compare.txt");" \
  "temporaries seen after kills: $TMP_SEEN, left at the end: $leftover"
[ "$leftover" = 0 ] || fail "stale temporaries left: $leftover"
rm -rf "$WORK"
