#!/usr/bin/env bash
# Build hse on the lent GPU machine (nvcc 13, CMake, ninja, Python with torch 2.11; no ITK,
# HDF5 headers, CLI11, fmt, doctest or nlohmann-json, and no network).
#
# Here (with network), once:   scripts/gpu-build.sh fetch    # .deb files into .gpu/debs (git-ignored)
# There (carry .gpu):          scripts/gpu-build.sh build    # unpacks them, builds build-gpu/ with CUDA, no ITK
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(libhdf5-dev libhdf5-103-1 libhdf5-cpp-103-1 libsz2 libaec0 libcurl4 libcli11-dev libfmt-dev libfmt9 doctest-dev
      nlohmann-json3-dev libgloo-dev libdeflate-dev libdeflate0 libjpeg62-turbo-dev libjpeg62-turbo)
case "${1:-build}" in
  fetch)
    mkdir -p .gpu/debs
    (cd .gpu/debs && apt-get download "${PKGS[@]}")
    du -sh .gpu/debs
    ;;
  build)
    P=$PWD/.gpu/prefix
    mkdir -p "$P"
    for f in .gpu/debs/*.deb; do dpkg -x "$f" "$P"; done
    export LD_LIBRARY_PATH="$P/usr/lib/x86_64-linux-gnu:$P/usr/lib/x86_64-linux-gnu/hdf5/serial:${LD_LIBRARY_PATH:-}"
    TORCH=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
    cmake -S . -B build-gpu -G Ninja -DHSE_WITH_ITK=OFF -DHSE_CUDA=ON \
      -DCMAKE_PREFIX_PATH="$TORCH;$P/usr" -DCMAKE_INCLUDE_PATH="$P/usr/include;$P/usr/include/hdf5/serial" \
      -DCMAKE_LIBRARY_PATH="$P/usr/lib/x86_64-linux-gnu;$P/usr/lib/x86_64-linux-gnu/hdf5/serial" \
      -DHDF5_C_INCLUDE_DIR="$P/usr/include/hdf5/serial" \
      -DHDF5_C_LIBRARY_hdf5="$P/usr/lib/x86_64-linux-gnu/hdf5/serial/libhdf5.so"
    cmake --build build-gpu -j "$(nproc)"
    ;;
  *) echo "usage: $0 fetch|build" >&2; exit 2 ;;
esac
