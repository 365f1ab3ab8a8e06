#!/usr/bin/env bash
# Installs every Debian package that moco-cpp's build, tests and default pretraining run need.
# Idempotent and quick when everything is present: it only calls apt-get for missing packages.
# Run as root on Debian 12 (bookworm). Usage: tools/setup.sh
set -euo pipefail

PACKAGES=(
  bazel-bootstrap bazel-rules-java          # Bazel 4.2.3, offline rules_java
  g++ libtorch-dev libopenblas0-openmp      # LibTorch 1.13 CPU + a fast BLAS behind it
  libgloo-dev                               # Gloo headers for c10d's ProcessGroupGloo (data parallelism)
  libeigen3-dev                             # Eigen reference backend
  libabsl-dev libgflags-dev libgoogle-glog-dev
  libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev libbenchmark-dev
  libturbojpeg0-dev libpng-dev zlib1g-dev   # image and gzip decoding
  dataset-fashion-mnist                     # the quickstart's real dataset
  python3-torch python3-torchvision python3-numpy  # golden-file scripts and the Python bench only
  python3-protobuf                          # event-file interop test (//moco/observe/events)
  chromium                                  # report.html browser test (//moco/observe)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup.sh: missing packages (${missing[*]}); run as root to install them." >&2
    exit 1
  fi
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# LibTorch's matmuls go through libblas.so.3; Debian's reference BLAS is ~30x slower than OpenBLAS.
blas=$(readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu 2>/dev/null || true)
if [[ "$blas" != *openblas* ]]; then
  echo "setup.sh: warning: libblas.so.3 resolves to '$blas', not OpenBLAS; training will be slow." >&2
fi
echo "setup.sh: all ${#PACKAGES[@]} packages present."
