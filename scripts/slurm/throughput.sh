#!/usr/bin/env bash
# Throughput of `sam amg` per core for a cluster plan (docs/SCALE.md): tasks x threads on this
# machine's cores, settings, precision. vit_b with random weights (sam make-random-checkpoint).
#   scripts/slurm/throughput.sh [SAM] [IMAGES_FOLDER] [WORK_FOLDER]
# Prints one line per case: seconds per image (mean over each task's images, from the run
# summary's per-image times, so model loading is left out), images per hour per core, and the
# peak memory (max RSS) of one task. The cases run one after the other.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
sam=$(realpath "${1:-$repo/build/sam}")
images=$(realpath "${2:-$repo/assets/images}")
work=${3:-/tmp/sam-throughput}
mkdir -p "$work"
cd "$work"
[ -s vit_b.pth ] || "$sam" make-random-checkpoint --model-type vit_b -o vit_b.pth >/dev/null
cores=$(nproc)
issue=(--pred-iou-thresh 0.7 --stability-score-thresh 0.8 --stability-score-offset 0.9)

# run NAME TASKS THREADS [sam amg options]: TASKS processes at once, each over every image.
run() {
    local name=$1 tasks=$2 threads=$3 t pids=() rss=0 spi
    shift 3
    rm -rf "out-$name"
    for t in $(seq 0 $((tasks - 1))); do
        /usr/bin/time -f %M -o "rss-$name-$t" "$sam" amg --checkpoint vit_b.pth --input "$images" \
            --output "out-$name/$t" --convert-to-rle --threads "$threads" "$@" 2>"log-$name-$t" &
        pids+=($!)
    done
    for t in "${pids[@]}"; do wait "$t"; done
    spi=0
    for t in $(seq 0 $((tasks - 1))); do
        "$sam" amg --checkpoint vit_b.pth --input "$images" --output "out-$name/$t" --convert-to-rle \
            --summarize "summary-$name-$t.json" 2>/dev/null
        spi=$(python3 -c "import json,sys; print($spi + json.load(open(sys.argv[1]))['seconds_per_image'])" "summary-$name-$t.json")
        rss=$(( $(cat "rss-$name-$t") > rss ? $(cat "rss-$name-$t") : rss ))
    done
    python3 - "$name" "$tasks" "$threads" "$spi" "$rss" "$cores" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import sys
name, tasks, threads, spi_sum, rss, cores, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
spi = spi_sum / tasks                      # seconds per image in one task
per_hour_core = tasks * 3600 / spi / (tasks * threads)
print(f"{name:28s} {tasks} task(s) x {threads} thread(s): {spi:7.2f} s/image per task, "
      f"{per_hour_core:6.1f} images/hour/core, max RSS {rss / 1024:6.0f} MiB, load {load}", flush=True)
PY
}

echo "cores: $cores; load before: $(cut -d' ' -f1-3 /proc/loadavg); images: $(ls "$images" | wc -l) in $images"
run defaults-1x2 1 2
run defaults-2x1 2 1
run issue-1x2 1 2 "${issue[@]}"
run issue-2x1 2 1 "${issue[@]}"
run issue-1x2-bf16 1 2 "${issue[@]}" --precision bf16
run issue-1x2-int8 1 2 "${issue[@]}" --precision int8
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
