#!/usr/bin/env bash
# The tiny student trained on one GPU in resumable chunks, one per device call (issue 19, item 3): several runs
# side by side on the same SDG data and the same time budget, each resumed where the last call stopped.
#
#   CALL=1 bash scripts/student_chunks_gpu.sh WORK_DIR RESULTS_DIR   # SDG, then the first chunk of every run
#   CALL=2 bash scripts/student_chunks_gpu.sh WORK_DIR RESULTS_DIR   # the next chunk (the shards stay in WORK_DIR)
#   CALL=3 ...                                                        # and so on, until BUDGET is spent
#
# CALL=1 builds gsplat's CUDA code beside SDG_PROCS SDG processes (SDG_MINUTES minutes of train-split worlds,
# SDG_STEPS teacher steps, Plücker latents stored) and the held-out SDG (VAL_COUNT val worlds, ground truth
# stored), then trains. Every call trains each run of RUNS for at most CHUNK minutes (export and held-out
# evaluation included), resuming its latest checkpoint; the runs share BUDGET minutes of training in all (the
# trainer fixes the step count from the speed it measures in the first chunk), so the stage schedule of
# configs/student_tiny.json spans all the chunks. Every chunk exports (EMA weights, fp16) and scores the export on
# the held-out scenes: the validation curve, one point per call.
#
# RUNS (default "footprint world"):
#   footprint  footprint-relative scales (configs/student_tiny_footprint.json), from the shipped student's weights
#   world      the release's world-unit scales (the tiny preset as shipped), from the same weights: the control
#   scratch    footprint-relative scales from a random initialisation
# RESULTS_DIR receives results_call<CALL>.tar.gz, holding per run <run>/export (weights, student.json,
# training_record.json), <run>/metrics.csv (the training curve), <run>/validation_call<CALL>.json and the log, and
# <run>_checkpoint.tar per run (the latest checkpoint, ~15 MB: a lost machine then costs only the SDG; rerun CALL=1
# with RESUME_FROM=<folder holding the <run>_checkpoint.tar files>).
# Knobs: SDG_MINUTES (3.5), SDG_PROCS (4), SDG_STEPS (12), VAL_COUNT (24), CHUNK (8.0), BUDGET (15.0), BATCH (4),
# LR (3e-4), THREADS (threads per trainer, 4), RESERVE (minutes of CHUNK kept for the export and its held-out
# evaluation, 1.5). Needs CUDA, gsplat and diffusers. A CPU run checks the plumbing at
# the micro size: WORLD=micro STAGES=<stage JSON> SDG_STEPS=2 VAL_COUNT=2 GSPLAT=0 ... (tests/distill/test_student_chunks_script.py).
set -uo pipefail
W=${1:?work dir}; R=${2:?results dir}
mkdir -p "$W" "$R"
CALL=${CALL:-1}; RUNS=${RUNS:-footprint world}
SDG_MINUTES=${SDG_MINUTES:-3.5}; SDG_PROCS=${SDG_PROCS:-4}; SDG_STEPS=${SDG_STEPS:-12}; VAL_COUNT=${VAL_COUNT:-24}
CHUNK=${CHUNK:-8.0}; BUDGET=${BUDGET:-15.0}; BATCH=${BATCH:-4}; LR=${LR:-3e-4}; THREADS=${THREADS:-4}
RESERVE=${RESERVE:-1.5}; WORLD=${WORLD:-tiny}; GSPLAT=${GSPLAT:-1}
STAGE_OPT=(); [ -n "${STAGES:-}" ] && STAGE_OPT=(--stages "$STAGES")
PY=${PYTHON:-python3}
CORES=$(nproc)
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
# shellcheck source=scripts/sdg_common.sh
. "$(dirname "$0")/sdg_common.sh"

sdg() {
  gsplat_build_start
  sdg_train_and_val
  wait "$GSPLAT_PID"
  tail -n 2 "$W"/sdg_rank*.log "$W/sdg_val.log" "$W/gsplat_build.log"
  stamp "SDG done: $(ls "$W"/sdg/shard-*.safetensors 2>/dev/null | wc -l) training shards"
}

train() {  # run name → one chunk
  local name=$1 opt=()
  case $name in
    footprint) opt=(--model configs/student_tiny_footprint.json --init-from src/lyra/weights/student_tiny) ;;
    world) opt=(--model tiny --init-from src/lyra/weights/student_tiny) ;;
    scratch) opt=(--model configs/student_tiny_footprint.json) ;;
    *) echo "unknown run $name" >&2; return 2 ;;
  esac
  local resume=(--resume)
  if [ -n "${RESUME_FROM:-}" ] && [ -f "$RESUME_FROM/${name}_checkpoint.tar" ] && [ ! -d "$W/$name/checkpoints" ]; then
    mkdir -p "$W/$name" && tar -xf "$RESUME_FROM/${name}_checkpoint.tar" -C "$W/$name"
  fi
  OMP_NUM_THREADS=$THREADS $PY -m lyra.train.recipes.student --data "$W/sdg" --out "$W/$name" "${resume[@]}" \
    --time-budget "$BUDGET" --max-minutes "$CHUNK" --export-reserve "$RESERVE" --batch-size "$BATCH" --lr "$LR" --warmup 100 \
    --schedule cosine --val-data "$W/val" --val-scenes "$VAL_COUNT" --log-every 50 --no-progress "${opt[@]}" "${STAGE_OPT[@]}" \
    >> "$W/train_$name.log" 2>&1
}

collect() {  # what comes back (a device call returns at most 8 files): one archive of the small files + checkpoints
  local name last S="$W/results_call$CALL"
  rm -rf "$S"; mkdir -p "$S"
  for name in $RUNS; do
    mkdir -p "$S/$name"
    cp "$W/train_$name.log" "$S/$name/train.log" 2>/dev/null
    cp "$W/$name/metrics.csv" "$S/$name/" 2>/dev/null
    if [ -d "$W/$name/export" ]; then
      cp -r "$W/$name/export" "$S/$name/"
      $PY -c "import json,sys; r=json.load(open(sys.argv[1])); json.dump(r.get('validation'), open(sys.argv[2],'w'), indent=1)" \
        "$W/$name/export/training_record.json" "$S/$name/validation_call$CALL.json" 2>/dev/null
    fi
    last=$(ls -d "$W/$name"/checkpoints/step-* 2>/dev/null | sort -V | tail -n 1)
    [ -n "$last" ] && (cd "$W/$name" && tar -cf "$R/${name}_checkpoint.tar" "checkpoints/$(basename "$last")")
  done
  cp "$W"/sdg_*.log "$W/gsplat_build.log" "$S/" 2>/dev/null
  tar -czf "$R/results_call$CALL.tar.gz" -C "$S" .
  ls -la "$R"
}

if [ "$CALL" = 1 ] && [ ! -f "$W/sdg/sdg.json" ]; then
  sdg
fi
stamp "call $CALL: training $RUNS, $CHUNK min each, $BUDGET min of training in all"
pids=()
for name in $RUNS; do train "$name" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
for name in $RUNS; do echo "== $name"; grep -E "resumed|time budget|stopped|exported|held-out|Error|error" \
  "$W/train_$name.log" | tail -n 6; done
collect
stamp "call $CALL done"
