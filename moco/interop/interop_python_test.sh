#!/bin/bash
# Interop check against real PyTorch (/usr/bin/python3 with torch 1.13, torchvision, numpy,
# installed by tools/setup.sh): the committed Python-made checkpoints go through
# tools/convert into the native format and out again as torchvision / moco / detectron2
# files, which testdata/check_exports.py loads with PyTorch; a Python-made timm ViT goes
# through native and back (testdata/timm_vit_roundtrip.py).
set -euo pipefail
CONVERT="$1"
DATA=moco/interop/testdata
OUT="${TEST_TMPDIR:-$(mktemp -d)}/exports"
mkdir -p "$OUT"
run() { "$CONVERT" "$@" 2>"$OUT/log" || { cat "$OUT/log"; exit 1; }; }
run --in=$DATA/moco_v2_zip.pth --to=native --out="$OUT/zip.ckpt"
run --in=$DATA/moco_v2_legacy.pth.tar --to=native --out="$OUT/legacy.ckpt"
run --in="$OUT/zip.ckpt" --to=torchvision --out="$OUT/zip.torchvision.pth"
run --in="$OUT/zip.ckpt" --to=moco --out="$OUT/zip.moco.pth"
run --in="$OUT/zip.ckpt" --to=detectron2 --out="$OUT/zip.d2.pkl"
run --in="$OUT/legacy.ckpt" --to=moco --out="$OUT/legacy.moco.pth"
run --in="$OUT/zip.ckpt" --to=moco --with_optimizer=false --out="$OUT/zip.noopt.moco.pth"
run --in=$DATA/moco_v3_zip.pth --to=native --out="$OUT/v3.ckpt"
run --in="$OUT/v3.ckpt" --to=moco_v3 --out="$OUT/v3.moco_v3.pth"
# timm (a ViT backbone with timm's classifier) -> native (fresh MoCo v3 heads) -> timm.
/usr/bin/python3 $DATA/timm_vit_roundtrip.py make "$OUT"
cat > "$OUT/vit.pbtxt" <<'PB'
model { arch: "vit_micro" image_size: 8 in_channels: 1 feature_dim: 16 projector_hidden_dim: 32 predictor_hidden_dim: 32 }
moco { method: "moco_v3" }
optimizer { algorithm: ADAMW lr: 1e-3 weight_decay: 0.1 }
PB
run --in="$OUT/timm_in.pth" --config="$OUT/vit.pbtxt" --to=native --out="$OUT/vit.ckpt"
run --in="$OUT/vit.ckpt" --to=timm --out="$OUT/timm_out.pth"
/usr/bin/python3 $DATA/timm_vit_roundtrip.py check "$OUT"
# A mismatching architecture is refused and nothing is written.
cat > "$OUT/wide.pbtxt" <<'PB'
model { arch: "resnet18" width_multiplier: 0.0625 feature_dim: 16 }
PB
if "$CONVERT" --in=$DATA/moco_v2_zip.pth --config="$OUT/wide.pbtxt" --to=torchvision \
    --out="$OUT/refused.pth" 2>"$OUT/log"; then
  echo "FAIL: a mismatching architecture was converted"; exit 1
fi
grep -q "'conv1.weight' has shape (2, 3, 7, 7) in the file but the architecture needs (4, 3, 7, 7)" "$OUT/log" \
  || { cat "$OUT/log"; echo "FAIL: error does not name the entry and both shapes"; exit 1; }
[ ! -e "$OUT/refused.pth" ] || { echo "FAIL: refused conversion wrote a file"; exit 1; }
ls "$OUT"/refused.pth.tmp.* 2>/dev/null && { echo "FAIL: temporary file left"; exit 1; }
/usr/bin/python3 $DATA/check_exports.py "$OUT"
