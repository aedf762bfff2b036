#!/usr/bin/env bash
# The recipe of the tiny student on one GPU (issue 8), in phases that each fit one 10-minute device call:
#
#   PHASE=sdg   bash scripts/distill_tiny_gpu.sh WORK_DIR RESULTS_DIR   # SDG (+ throughput and generate benchmarks)
#   PHASE=train bash scripts/distill_tiny_gpu.sh WORK_DIR RESULTS_DIR   # student + 3 ablations, evaluations
#   PHASE=all   ... (default)                                           # both, one after the other
#
# PHASE=sdg measures SDG throughput alone first (benchmarks/gpu/sdg_throughput.py), builds gsplat's CUDA code,
# then runs SDG_PROCS SDG processes (threads capped) and the held-out SDG (with ground truth) for SDG_MINUTES,
# then times `lyra generate` on the GPU (benchmarks/gpu/generate_gpu.py). PHASE=train trains the student and
# its three ablations (no depth loss, single view, no pruning) side by side on the same GPU (a tiny decoder
# leaves most of it idle); each exports itself and evaluates its fidelity on the held-out SDG scenes (all and
# pruned Gaussians); then the main student is scored against ground truth.
# WORK_DIR holds the (large) SDG shards and the runs; RESULTS_DIR receives what is worth keeping: the main
# student's export (student_tiny.tar.gz), the ablations' records and every log and metric file
# (<phase>_results.tar.gz).
# Knobs (environment): SDG_MINUTES (4.0), SDG_PROCS (4), SDG_STEPS (teacher steps, 12), VAL_COUNT (24),
# TRAIN_BUDGET (training proper, minutes, 5.0), TRAIN_MAX (hard limit per training process, export and
# held-out evaluation included, 6.8), BATCH (4), LR (3e-4), ABLATIONS (no_depth single_view no_prune),
# WORLD (tiny) and STAGES (a stage list JSON) let a CPU run check the plumbing at the micro size:
#   WORLD=micro STAGES=... SDG_STEPS=2 ... bash scripts/distill_tiny_gpu.sh.
# Needs CUDA, gsplat and diffusers (see docs/distillation.md).
set -uo pipefail
W=${1:?work dir}; R=${2:?results dir}
mkdir -p "$W" "$R"
PHASE=${PHASE:-all}
SDG_MINUTES=${SDG_MINUTES:-4.0}; SDG_PROCS=${SDG_PROCS:-4}; SDG_STEPS=${SDG_STEPS:-12}; VAL_COUNT=${VAL_COUNT:-24}
TRAIN_BUDGET=${TRAIN_BUDGET:-5.0}; TRAIN_MAX=${TRAIN_MAX:-6.8}; BATCH=${BATCH:-4}; LR=${LR:-3e-4}
ABLATIONS=${ABLATIONS:-no_depth single_view no_prune}; WORLD=${WORLD:-tiny}
STAGE_OPT=(); [ -n "${STAGES:-}" ] && STAGE_OPT=(--stages "$STAGES")
PY=${PYTHON:-python3}
CORES=$(nproc)
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
# shellcheck source=scripts/sdg_common.sh
. "$(dirname "$0")/sdg_common.sh"
pack() {  # logs, records and metrics of this phase (no shards, no checkpoints)
  (cd "$W" && tar -czf "$R/${PHASE}_results.tar.gz" --exclude='sdg' --exclude='val' --exclude='checkpoints' \
    --exclude='*.safetensors' --exclude='*.pt' .)
}

phase_sdg() {
  # gsplat's CUDA code, built once now (the trainers of the next phase need it), on a quarter of the cores.
  gsplat_build_start
  if [ "$WORLD" = tiny ]; then
    stamp "SDG throughput, alone (but for the gsplat build)"
    OMP_NUM_THREADS=$(( CORES / 2 )) timeout 150 $PY benchmarks/gpu/sdg_throughput.py --count 16 --batch 1,8 \
      --steps "$SDG_STEPS" --json "$W/sdg_throughput.json" 2>&1 | tee "$W/sdg_throughput.log"
  fi
  sdg_train_and_val
  wait "$GSPLAT_PID"
  cat "$W"/sdg_rank*.log "$W/sdg_val.log" "$W/gsplat_build.log"
  stamp "SDG done: $(ls "$W"/sdg/shard-*.safetensors | wc -l) training shards"
  if [ "$WORLD" = tiny ]; then
    OMP_NUM_THREADS=$(( CORES / 2 )) timeout 120 $PY benchmarks/gpu/generate_gpu.py --steps 35 \
      --json "$W/generate_gpu.json" > "$W/generate_gpu.log" 2>&1
    tail -n 20 "$W/generate_gpu.log"
  fi
  pack
}

train() {  # name, extra options...
  local name=$1; shift
  $PY -m lyra.train.recipes.student --data "$W/sdg" --out "$W/$name" --time-budget "$TRAIN_BUDGET" \
    --max-minutes "$TRAIN_MAX" --batch-size "$BATCH" --lr "$LR" --warmup 100 --schedule cosine "${STAGE_OPT[@]}" \
    --val-data "$W/val" --val-scenes "$VAL_COUNT" --log-every 100 --no-progress "$@" > "$W/train_$name.log" 2>&1
}

phase_train() {
  local n=$(( 1 + $(echo "$ABLATIONS" | wc -w) ))
  export OMP_NUM_THREADS=$(( CORES / n > 0 ? CORES / n : 1 ))
  stamp "training: main + ablations ($ABLATIONS), $OMP_NUM_THREADS threads each, $TRAIN_BUDGET min"
  local pids=() a
  train main & pids+=($!)
  for a in $ABLATIONS; do
    case $a in
      no_depth) train no_depth --no-depth-loss & pids+=($!) ;;
      single_view) train single_view --single-view & pids+=($!) ;;
      no_prune) train no_prune --no-prune & pids+=($!) ;;
      *) echo "unknown ablation $a" >&2 ;;
    esac
  done
  for a in "${pids[@]}"; do wait "$a"; done
  tail -n 3 "$W"/train_*.log
  stamp "training done"
  pack  # early, in case the time limit cuts what follows
  if [ -f "$W/main/export/model.safetensors" ]; then
    tar -czf "$R/student_tiny.tar.gz" -C "$W/main/export" .
    export OMP_NUM_THREADS=$CORES
    $PY -m lyra.distill.evaluate --student "$W/main/export" --data "$W/val" --scenes 0 --gt \
      --json "$W/main_eval.json" --no-progress > "$W/main_eval.log" 2>&1
    cat "$W/main_eval.log"
  fi
  stamp "all done"
  pack
}

case $PHASE in
  sdg) phase_sdg ;;
  train) phase_train ;;
  all) PHASE=sdg phase_sdg; PHASE=train phase_train ;;
  *) echo "PHASE must be sdg, train or all" >&2; exit 2 ;;
esac
ls -la "$R"
