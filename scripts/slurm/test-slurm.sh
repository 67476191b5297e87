#!/usr/bin/env bash
# The Slurm test: a real single-node cluster (scripts/slurm/cluster.sh), the README's array job
# (scripts/slurm/amg-array.sbatch) over 40 small images with the test model, and faults: task 0
# cancelled with scancel and task 1's sam killed with SIGKILL, both while segmenting; then task 1
# requeued (scontrol requeue) and task 0 resubmitted (sbatch --array=0). The final outputs must
# be byte-identical to one `sam amg` run over the folder, every marker complete, no temporary
# left, and `sam amg --summarize` must report 40 done (and, before the recovery, exit 1).
#   scripts/slurm/test-slurm.sh [path/to/sam]        (default build/sam)
# Exit 0: passed; 77: skipped (the reason is printed: not root, Slurm not installed); else failed.
# The cluster's daemons and jobs are stopped on any exit. SAM_SLURM_KEEP=1 keeps the work folder.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
sam=$(realpath "${1:-$repo/build/sam}")
data=$repo/tests/data
start=$(date +%s)
say() { printf '[%3d s] slurm-test: %s\n' $(( $(date +%s) - start )) "$*"; }
skip() { echo "SKIPPED: $*"; exit 77; }
fail() { say "FAILED: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root: slurmd starts jobs as their user (run as root, as CI does)"
for tool in munged slurmctld slurmd sbatch scontrol python3; do
    command -v "$tool" >/dev/null ||
        skip "$tool is not installed (scripts/setup.sh installs munge, slurmctld, slurmd, slurm-client)"
done
[ -x "$sam" ] || fail "no sam binary at $sam"

work=$(mktemp -d /tmp/sam-slurm-test.XXXXXX)
# A deadline of its own (SAM_SLURM_TEST_LIMIT seconds, 240 by default): SIGTERM to this script, so
# that the cleanup below runs (ctest's timeout would kill it without one).
(
    sleep "${SAM_SLURM_TEST_LIMIT:-240}" &
    trap 'kill $! 2>/dev/null; exit 0' TERM
    wait $! && echo "slurm-test: gave up after ${SAM_SLURM_TEST_LIMIT:-240} s" && kill -TERM $$
) &
watchdog=$!
# shellcheck source=cluster.sh
source "$repo/scripts/slurm/cluster.sh"
cleanup() {
    local rc=$?
    trap - EXIT
    kill "$watchdog" 2>/dev/null || true
    slurm_down
    if [ $rc -ne 0 ] && [ -d "$work/cluster/logs" ]; then
        for f in "$work"/cluster/logs/*.log "$work"/logs/*; do
            [ -f "$f" ] && { echo "--- $f (last 15 lines)"; tail -n 15 "$f"; }
        done
    fi
    if [ "${SAM_SLURM_KEEP:-0}" = 1 ]; then echo "slurm-test: kept $work"; else rm -rf "$work"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$work"

# 40 images; the settings of the test model that make a few masks each, on one thread (so that
# outputs are byte-identical between runs: see docs/RELIABILITY.md).
python3 "$repo/scripts/slurm/make-test-images.py" 40 images
opts=(--config "$data/config.json" --points-per-side 4 --pred-iou-thresh 0 --stability-score-thresh 0.5)
"$sam" amg --checkpoint "$data/sam_tiny.pth" --input images --output reference --convert-to-rle --threads 1 \
    "${opts[@]}" 2>reference.log || fail "the reference run failed: $(tail -n 5 reference.log)"
say "reference: one sam amg over the folder, $(ls reference | wc -l) outputs"

slurm_up "$work/cluster"
mkdir -p logs
export SAM=$sam
submit() {  # submit SBATCH-OPTIONS...: the README's array job over images/ into out/
    slurm_sbatch --parsable --cpus-per-task=1 --output="logs/amg-%A_%a.out" "$@" \
        "$repo/scripts/slurm/amg-array.sbatch" "$data/sam_tiny.pth" images out "${opts[@]}"
}
job=$(submit --array=0-3)
say "submitted array job $job (4 tasks of 1 CPU on $(nproc) CPUs)"

state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1; }
# Waits until task K's log shows N finished images (so the task is segmenting its next one).
wait_images() {
    local k=$1 n=$2 i log
    for i in $(seq 600); do
        log=$(ls logs/amg-"${job}"_"$k".out 2>/dev/null || true)
        if [ -n "$log" ] && [ "$(grep -c ' masks in ' "$log" || true)" -ge "$n" ]; then return 0; fi
        sleep 0.1
    done
    fail "task $k did not finish $n images in 60 s (state $(state "${job}_$k"))"
}
# The PID of task K's sam (the batch script execs it). Only the few `sam` processes are looked
# at (pgrep), not every process's environment: a task segments a test image in ~0.2 s, and a
# scan of all of /proc on a busy machine took long enough for task 1 to finish its shard first.
sam_pid() {
    local p
    for p in $(pgrep -x sam); do
        grep -qxz "SLURM_ARRAY_JOB_ID=$job" "/proc/$p/environ" 2>/dev/null || continue
        grep -qxz "SLURM_ARRAY_TASK_ID=$1" "/proc/$p/environ" 2>/dev/null && { echo "$p"; return; }
    done
}
wait_gone() {  # wait_gone JOB...: until none of them is pending, running or completing
    local i
    for i in $(seq 1200); do
        [ -z "$(squeue -h -j "$(IFS=,; echo "$*")" -t pending,running,completing,configuring 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    fail "jobs $* still queued after 120 s: $(squeue -h)"
}

# Fault 1: scancel of task 0 while it segments its second image.
wait_images 0 1
scancel "${job}_0"
say "fault: scancel ${job}_0 after its first image"
# Fault 2: SIGKILL of task 1's sam while it segments its second image.
wait_images 1 1
pid=$(sam_pid 1)
[ -n "$pid" ] || fail "no sam process of task 1"
kill -KILL "$pid"
say "fault: kill -9 of task 1's sam (PID $pid) after its first image"
wait_gone "$job"
s0=$(state "${job}_0") s1=$(state "${job}_1") s2=$(state "${job}_2") s3=$(state "${job}_3")
say "array finished: task states $s0 $s1 $s2 $s3"
[ "$s0" = CANCELLED ] || fail "task 0 is $s0, not CANCELLED"
[ "$s1" = FAILED ] || fail "task 1 is $s1, not FAILED"
[ "$s2" = COMPLETED ] && [ "$s3" = COMPLETED ] || fail "tasks 2 and 3 are $s2 and $s3, not COMPLETED"

summarize() {
    "$sam" amg --checkpoint "$data/sam_tiny.pth" --input images --output out --convert-to-rle --summarize "$1" 2>&1
}
if summarize summary-before.json >summary-before.log; then fail "the summary said all done after two killed tasks"; fi
say "$(head -n 1 summary-before.log)"
python3 - summary-before.json <<'PY' || fail "the summary before the recovery is wrong"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["images"] == 40 and s["failed"] == 0, s
assert 0 < s["missing"] < 20 and s["done"] + s["missing"] == 40, s
assert len(s["index"]) == s["done"] and len(s["missing_images"]) == s["missing"], s
print("  of the missing, started but unfinished (killed while writing):",
      sum(m["reason"].startswith("started") for m in s["missing_images"]))
PY

# Recovery: the failed task requeued as it was, the cancelled one resubmitted on its own.
scontrol requeue "${job}_1"
# Slurm holds a requeued job for about two minutes (Reason=BeginTime); let it start now.
scontrol update jobid="${job}_1" StartTime=now
job0=$(submit --array=0 --export=ALL,SAM_SHARDS=4)
say "recovery: scontrol requeue ${job}_1, resubmitted task 0 as job $job0"
wait_gone "$job" "$job0"
s1=$(state "${job}_1")
s0=$(state "${job0}_0")
[ "$s1" = COMPLETED ] && [ "$s0" = COMPLETED ] || fail "after the recovery: task 1 is $s1, task 0 is $s0"
grep -q "output exists, skipped" logs/amg-"${job}"_1.out || fail "the requeued task redid images it had finished"

summarize summary.json >summary.log || fail "the summary after the recovery: $(cat summary.log)"
say "$(head -n 1 summary.log)"
python3 - summary.json <<'PY' || fail "the final summary is wrong"
import json, sys
s = json.load(open(sys.argv[1]))
assert (s["images"], s["done"], s["failed"], s["missing"]) == (40, 40, 0, 0), s
assert len(s["index"]) == 40 and all(e["masks"] >= 0 and e["seconds"] > 0 for e in s["index"]), s
assert s["masks"] == sum(e["masks"] for e in s["index"]) and s["masks"] > 0, s
PY

# The outputs: exactly the reference's, byte for byte, nothing more, every marker complete.
diff -r -q -x '.*' reference out || fail "the outputs differ from one sam amg run over the folder"
[ -z "$(find out -name '*.sam-tmp*')" ] || fail "temporaries left: $(find out -name '*.sam-tmp*')"
markers=$(find out -name '.*.sam-output' | wc -l)
complete=$(grep -l '"complete":true' out/.*.sam-output | wc -l)
[ "$markers" -eq 40 ] && [ "$complete" -eq 40 ] || fail "$complete of $markers markers complete, 40 expected"
say "passed: 40 outputs identical to one sam amg run, 40 markers complete, no temporaries"
