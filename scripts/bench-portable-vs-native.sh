#!/usr/bin/env bash
# The portable build (SAM_NATIVE=OFF: baseline x86-64, SAM's kernels chosen at run time) against
# a -march=native build of the same tree, in one run: `sam bench` of each, alternated, three times.
#   scripts/bench-portable-vs-native.sh [model type] [repetitions]
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-vit_b}"
reps="${2:-3}"
for b in build:OFF build-native:ON; do
    dir="${b%%:*}"
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSAM_NATIVE="${b##*:}" >/dev/null
    cmake --build "$dir" -j"$(nproc)" --target sam >/dev/null
done
echo "cpu: $(build/sam info | sed -n 's/^cpu flags: *//p')"
echo "kernels (portable build): $(build/sam info | sed -n 's/^kernels: *//p')"
for round in 1 2 3; do
    for dir in build build-native; do
        "$dir/sam" bench --model-type "$model" -r "$reps" | awk -v b="$dir" -v r="$round" '
            /encoder  f32/ { for (i = 1; i <= NF; ++i) if ($i == "min") enc = $(i + 1) }
            /decoder/      { for (i = 1; i <= NF; ++i) if ($i == "min") dec = $(i + 1) }
            /sgemm peak on encoder/ { peak = $(NF - 1) }
            END { printf "round %d %-13s encoder min %s s  decoder min %s ms  sgemm peak %s GFLOP/s\n", r, b, enc, dec, peak }'
    done
done
