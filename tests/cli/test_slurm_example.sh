#!/usr/bin/env bash
# examples/slurm/preprocess-array.sbatch under a stand-in `srun`, as 2 array tasks on
# hse-synth data: the shards must read as one set covering every volume in order.
set -eu
BIN=$(cd "${HSE_BIN_DIR:-build/bin}" && pwd)
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir "$T/shim"
printf '#!/bin/sh\nexec "$@"\n' > "$T/shim/srun"
chmod +x "$T/shim/srun"
export PATH="$T/shim:$BIN:$PATH"
"$BIN/hse-synth" -o "$T/s" --size tiny --n-train 0 --n-valid 3 --seed 9 -q
for i in 0 1; do
  SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=2 SLURM_CPUS_PER_TASK=1 \
    bash "$SRC/examples/slurm/preprocess-array.sbatch" "$T/s/dataset" valid "$T/out" 2>/dev/null
done
got=$("$BIN/hse-info" --ids "$T"/out/volumes_valid.*.h5 | tr '\n' ' ')
want=$(tail -n +2 "$T/s/dataset/metadata/validation_metadata.csv" | cut -d, -f1 | tr '\n' ' ')
[ "$got" = "$want" ] || { echo "FAIL: shards give '$got', metadata lists '$want'"; exit 1; }
"$BIN/hse-info" --kind slices "$T"/out/slices_valid.*.h5 > /dev/null
echo "1 passed, 0 failed"
