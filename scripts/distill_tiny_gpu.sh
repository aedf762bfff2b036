#!/usr/bin/env bash
# The recipe of the shipped tiny student, in one GPU command (issue 8): SDG from the tiny teacher, then the
# student and its three ablations trained side by side on the same GPU, then evaluation on held-out SDG
# scenes (fidelity to the teacher, and ground truth of the procedural worlds).
#
#   bash scripts/distill_tiny_gpu.sh WORK_DIR RESULTS_DIR
#
# WORK_DIR holds the (large) SDG shards and the runs; RESULTS_DIR receives what is worth keeping: the main
# student's export (student_tiny.tar.gz) and every record, metric file and log (results.tar.gz).
# Time knobs (minutes, environment): SDG_MINUTES (2.0), TRAIN_BUDGET (training proper, 3.5), TRAIN_MAX
# (hard limit of each training process, export and held-out evaluation included, 5.2). Other knobs:
# SDG_PROCS (3 processes sharing the GPU), SDG_STEPS (teacher steps, 35 as GEN3C), BATCH (4), LR (3e-4),
# VAL_COUNT (24 held-out scenes), EVAL_WORLDS (4); WORLD (tiny) and STAGES (a stage list JSON) let a CPU run
# check the plumbing at the micro size: WORLD=micro STAGES=... SDG_STEPS=2 ... bash scripts/distill_tiny_gpu.sh.
# Needs CUDA, gsplat (JIT-built here once, before the trainers start) and diffusers.
#
# Measured 2026-12-02 on one H200 (16 cores): with three SDG processes, the held-out SDG, the teacher
# evaluation and the gsplat build all at once, each SDG process made 8 scenes in about 6 minutes (1.3-1.4
# scenes/min each) — slower than one 2-core CPU (2.9 scenes/min). The likely cause is CPU oversubscription
# (every process starts one OpenMP thread per core, and spinning threads starve each other); the threads per
# process are now capped below. Before the next full run, measure SDG alone first:
#   python3 benchmarks/gpu/sdg_throughput.py --count 16 --batch 1,8 --json $OUT/sdg.json
set -uo pipefail
W=${1:?work dir}; R=${2:?results dir}
mkdir -p "$W" "$R"
SDG_MINUTES=${SDG_MINUTES:-2.0}; TRAIN_BUDGET=${TRAIN_BUDGET:-3.5}; TRAIN_MAX=${TRAIN_MAX:-5.2}
SDG_PROCS=${SDG_PROCS:-3}; SDG_STEPS=${SDG_STEPS:-35}; BATCH=${BATCH:-4}; LR=${LR:-3e-4}
VAL_COUNT=${VAL_COUNT:-24}; EVAL_WORLDS=${EVAL_WORLDS:-4}; WORLD=${WORLD:-tiny}
STAGE_OPT=(); [ -n "${STAGES:-}" ] && STAGE_OPT=(--stages "$STAGES")
PY=${PYTHON:-python3}
CORES=$(nproc); export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( CORES / (SDG_PROCS + 2) > 0 ? CORES / (SDG_PROCS + 2) : 1 ))}
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }

# gsplat's CUDA code: build once now, so that the trainers do not all build it at the same time.
( MAX_JOBS=$(( CORES / 2 > 0 ? CORES / 2 : 1 )) $PY -c "from gsplat.cuda._backend import _C; assert _C is not None; print('gsplat built')" \
  > "$W/gsplat_build.log" 2>&1 ) &
build=$!

# Teacher quality against its step count (4 held-out test worlds), on the side.
( for s in ${EVAL_STEPS:-1 8 35}; do
    $PY -m lyra eval teacher --worlds "$EVAL_WORLDS" --world-preset "$WORLD" --steps "$s" \
      --out "$W/teacher_eval_steps$s" --no-progress
  done > "$W/teacher_eval.log" 2>&1 ) &
teval=$!

stamp "SDG: $SDG_PROCS processes, $SDG_MINUTES min, $SDG_STEPS teacher steps"
pids=()
for r in $(seq 0 $((SDG_PROCS - 1))); do
  $PY -m lyra sdg "$W/sdg" --count 4000 --shard-size 8 --steps "$SDG_STEPS" --rank "$r" --world-size "$SDG_PROCS" \
    --world-preset "$WORLD" --max-minutes "$SDG_MINUTES" --no-progress > "$W/sdg_rank$r.log" 2>&1 &
  pids+=($!)
done
$PY -m lyra sdg "$W/val" --split val --count "$VAL_COUNT" --shard-size 8 --steps "$SDG_STEPS" --store-gt \
  --world-preset "$WORLD" --no-progress \
  > "$W/sdg_val.log" 2>&1
for p in "${pids[@]}"; do wait "$p"; done
wait "$build"
cat "$W"/sdg_rank*.log "$W/sdg_val.log" "$W/gsplat_build.log"
stamp "SDG done: $(ls "$W"/sdg/shard-*.safetensors | wc -l) training shards"

# The student and its ablations, side by side (a tiny decoder leaves most of the GPU idle).
train() {  # name, extra options...
  local name=$1; shift
  $PY -m lyra.distill.train --data "$W/sdg" --out "$W/$name" --time-budget "$TRAIN_BUDGET" \
    --max-minutes "$TRAIN_MAX" --batch-size "$BATCH" --lr "$LR" --warmup 100 --schedule cosine "${STAGE_OPT[@]}" \
    --val-data "$W/val" --val-scenes "$VAL_COUNT" --log-every 100 --no-progress "$@" > "$W/train_$name.log" 2>&1
}
train main & m=$!
train no_depth --no-depth-loss & a=$!
train single_view --single-view & b=$!
train no_prune --no-prune & c=$!
wait $m $a $b $c
tail -n 4 "$W"/train_*.log
stamp "training done"

pack() {
  (cd "$W" && tar -czf "$R/results.tar.gz" --exclude='sdg' --exclude='val' --exclude='checkpoints' \
    --exclude='*.safetensors' .)
}
pack  # early, in case the time limit cuts what follows
# Held-out evaluation of the main student: fidelity (all and pruned) and ground truth.
if [ -f "$W/main/export/model.safetensors" ]; then
  tar -czf "$R/student_tiny.tar.gz" -C "$W/main/export" .
  $PY -m lyra.distill.evaluate --student "$W/main/export" --data "$W/val" --scenes 0 --gt \
    --json "$W/main_eval.json" --no-progress > "$W/main_eval.log" 2>&1
  cat "$W/main_eval.log"
  if [ -f benchmarks/gpu/generate_gpu.py ]; then
    $PY benchmarks/gpu/generate_gpu.py --student "$W/main/export" --json "$W/generate_gpu.json" \
      > "$W/generate_gpu.log" 2>&1
    tail -n 15 "$W/generate_gpu.log"
  fi
fi
wait "$teval"; cat "$W/teacher_eval.log"
stamp "all done"
pack
ls -la "$R"
