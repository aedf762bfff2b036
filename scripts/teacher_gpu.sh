#!/usr/bin/env bash
# One resumable chunk of teacher training on one GPU (issue 18), sized for one 10-minute device call:
#
#   SEED=1 bash scripts/teacher_gpu.sh WORK_DIR RESULTS_DIR                      # chunk 1: a fresh denoiser
#   INIT=<chunk 1's export> SEED=2 bash scripts/teacher_gpu.sh WORK_DIR RESULTS_DIR  # chunk 2, ...
#
# A chunk trains the denoiser on new training worlds (SEED k draws its own worlds; the test worlds are never drawn)
# against the latents of the tokenizer TOKENIZER (default tiny_block), and exports the EMA weights (fp16) with the
# held-out evaluation (TEST_WORLDS test worlds, exact depth, EVAL_STEPS Euler steps) to RESULTS_DIR/export. That
# folder (≈ 9 MB) is what comes back from the device and what the next chunk's INIT points at: it starts from those
# weights with a fresh AdamW (warm-up, then cosine decay over the chunk: a warm restart). The full training state
# (AdamW + EMA, several times the weights) stays in WORK_DIR on the device.
#
# RESULTS_DIR always receives train.log and metrics.csv (also when the trainer fails); the script exits non-zero
# unless RESULTS_DIR/export holds the weights and a training record with held-out test metrics.
#
# Knobs (environment): BUDGET (training minutes, 6.0), MAXMIN (limit from the trainer's start, export and test
# included, 8.6), RESERVE (minutes of MAXMIN kept for export + test, 1.6), LR (3e-4; 1.5e-4 with INIT), WARMUP
# (300; 100 with INIT), BATCH (24), TOKENIZER (tiny_block; a distillation: its teacher's; a chunk from INIT: its
# start's), TEST_WORLDS (8),
# EVAL_STEPS (8), POOL (64), REFRESH (steps between pool refreshes, 4), LOG_EVERY (200). A fresh denoiser (no
# INIT): HEADS / LAYERS (the tiny preset's 4 heads x 32 and 8 layers unless set), ANCHOR (none | warp | filled) and
# PREDICTION (velocity | clean | edm), GENERATED (K: --generated-channels): TeacherDenoiser.anchor_mode,
# .prediction and .generated_channels. DISTILL=<teacher export> (instead
# of INIT): few-step distillation (lyra train teacher --distill-from; DISTILL_STEPS 4, DISTILL_TEACHER_STEPS 32,
# LR 5e-5).
# Run it alone on the machine: each refresh prepares a world on the CPU inline, and beside the tokenizer's world
# workers that took 15 s instead of 0.4 s (2026-12-03).
# DYNAMIC=1 (with INIT=<a static export>): the dynamic teacher's fine-tune on dynamic worlds (--dynamic); its record
# also tests the static start on the same dynamic worlds ("test_init"), the gain it must show.
# Sizes for a CPU check of the plumbing: WORLD_PRESET (tiny), CPU=1, STEPS (a fixed step count instead of BUDGET).
# HARD: seconds after which the trainer is stopped whatever it is doing (default MAXMIN + 0.4 minutes).
set -uo pipefail
W=${1:?work dir}; R=${2:?results dir}
mkdir -p "$W" "$R"
BUDGET=${BUDGET:-6.0}; MAXMIN=${MAXMIN:-8.6}; RESERVE=${RESERVE:-1.6}; BATCH=${BATCH:-24}; SEED=${SEED:-1}
TOKENIZER=${TOKENIZER:-}; TEST_WORLDS=${TEST_WORLDS:-8}; EVAL_STEPS=${EVAL_STEPS:-8}; POOL=${POOL:-64}
LOG_EVERY=${LOG_EVERY:-200}; WORLD_PRESET=${WORLD_PRESET:-tiny}; REFRESH=${REFRESH:-4}
PY=${PYTHON:-python3}
HARD=${HARD:-$(awk -v m="$MAXMIN" 'BEGIN { printf "%d", (m + 0.4) * 60 }')}
OPT=()
if [ -n "${DISTILL:-}" ]; then  # few-step distillation of the teacher export DISTILL (student = a copy of it)
  OPT+=(--distill-from "$DISTILL" --distill-steps "${DISTILL_STEPS:-4}")
  OPT+=(--distill-teacher-steps "${DISTILL_TEACHER_STEPS:-32}")
  LR=${LR:-5e-5}; WARMUP=${WARMUP:-50}
elif [ -n "${INIT:-}" ]; then
  OPT+=(--init-from "$INIT"); LR=${LR:-1.5e-4}; WARMUP=${WARMUP:-100}
else
  LR=${LR:-3e-4}; WARMUP=${WARMUP:-300}
  if [ -n "${HEADS:-}" ]; then OPT+=(--heads "$HEADS"); fi
  if [ -n "${LAYERS:-}" ]; then OPT+=(--layers "$LAYERS"); fi
  if [ -n "${ANCHOR:-}" ]; then OPT+=(--anchor "$ANCHOR"); fi
  if [ -n "${PREDICTION:-}" ]; then OPT+=(--prediction "$PREDICTION"); fi
  if [ -n "${GENERATED:-}" ]; then OPT+=(--generated-channels "$GENERATED"); fi
fi
# the tokenizer: TOKENIZER if set; else a distillation reads its teacher's, a chunk from INIT its start's, and a
# fresh run tiny_block
if [ -n "$TOKENIZER" ]; then OPT+=(--tokenizer "$TOKENIZER"); elif [ -z "${DISTILL:-}" ] && [ -z "${INIT:-}" ]; then
  OPT+=(--tokenizer tiny_block); fi
if [ "${DYNAMIC:-0}" = 1 ]; then OPT+=(--dynamic); fi
if [ "${CPU:-0}" = 1 ]; then OPT+=(--cpu); fi
if [ -n "${STEPS:-}" ]; then OPT+=(--steps "$STEPS"); else OPT+=(--time-budget "$BUDGET"); fi
export PYTHONUNBUFFERED=1
timeout -k 15 "$HARD" $PY -m lyra.train.recipes.teacher --out "$W/run" "${OPT[@]}" \
  --world-preset "$WORLD_PRESET" --batch-size "$BATCH" --pool-worlds "$POOL" --refresh-every "$REFRESH" \
  --seed "$SEED" --lr "$LR" --warmup "$WARMUP" --test-worlds "$TEST_WORLDS" --eval-steps "$EVAL_STEPS" \
  --max-minutes "$MAXMIN" \
  --export-reserve "$RESERVE" --no-progress --log-every "$LOG_EVERY" --export-to "$R/export" 2>&1 | tee "$R/train.log"
rc=${PIPESTATUS[0]}
# shellcheck source=scripts/chunk_common.sh
. "$(dirname "$0")/chunk_common.sh"
finish_chunk teacher_gpu.sh "$rc" "$W" "$R" "$HARD"
