#!/usr/bin/env bash
# One resumable chunk of tokenizer training on one GPU (issue 18), sized for one 10-minute device call:
#
#   INIT=src/lyra/weights/tokenizer_tiny SEED=1 bash scripts/tokenizer_gpu.sh WORK_DIR RESULTS_DIR   # chunk 1
#   INIT=<chunk 1's export> SEED=2 bash scripts/tokenizer_gpu.sh WORK_DIR RESULTS_DIR                # chunk 2, ...
#
# Each chunk starts from the exported fp16 weights in INIT (a diffusers folder: config.json, weights, record) with a
# fresh AdamW (warm-up, then cosine decay over the chunk: a warm restart), trains on new training worlds (SEED k
# draws worlds 1,000,000 + k·10,000,019 + ...; the test worlds are never drawn) with the colour augmentation, and
# exports the EMA weights with latent statistics and held-out metrics (TEST_WORLDS test worlds × 6 videos: PSNR,
# SSIM, ΔE00; saturated colour patches: ΔE00) to RESULTS_DIR/export. Those three files (≤ 10 MB) are what comes back
# from the device and what the next chunk's INIT points at; the full training state (≈ 60 MB with AdamW and EMA)
# stays in WORK_DIR on the device. INIT unset: train from scratch with CONFIG (a preset or a JSON file of
# AutoencoderKLCosmos kwargs).
#
# RESULTS_DIR always receives train.log (everything the trainer printed) and metrics.csv (the training curve), also
# when the trainer fails; the script exits non-zero unless RESULTS_DIR/export holds config.json, the weights and
# training_record.json with its held-out test metrics.
#
# Knobs (environment): BUDGET (training minutes, 5.5), MAXMIN (limit of the trainer from its start, export
# included, 8.0), RESERVE (minutes of MAXMIN kept for the export and the held-out test, 1.5), LR (1.5e-4), CAUG
# (share of colour-augmented videos, 0.3), CONFIG (tiny), BATCH (16), WORKERS (6), WARMUP (100 with INIT, else 200).
# Sizes, for quick checks (defaults: the tiny tokenizer's working size on the tiny worlds): WORLD_PRESET (tiny),
# FRAMES (17), SIZE (176x320), POOL (pool worlds, 32), TEST_WORLDS (16), STATS_BATCHES (8), PRINT_EVERY (250),
# CPU=1 (train on the CPU). HARD: seconds after which the trainer is stopped whatever it is doing (default
# MAXMIN + 0.4 minutes, i.e. 504 s; SIGTERM, then SIGKILL 15 s later), so that the log and the curve still come
# back when a device call's own limit would otherwise cut the whole command. WORK_DIR/run must not hold
# checkpoints (a new folder per chunk). Needs lyra.world and diffusers (on the device carry the diffusers wheel:
# docs/benchmarks.md, "Training in resumable chunks").
set -uo pipefail
W=${1:?work dir}; R=${2:?results dir}
mkdir -p "$W" "$R"
BUDGET=${BUDGET:-5.5}; MAXMIN=${MAXMIN:-8.0}; RESERVE=${RESERVE:-1.5}; LR=${LR:-1.5e-4}; CAUG=${CAUG:-0.3}
SEED=${SEED:-1}; CONFIG=${CONFIG:-tiny}; BATCH=${BATCH:-16}; WORKERS=${WORKERS:-6}
WORLD_PRESET=${WORLD_PRESET:-tiny}; FRAMES=${FRAMES:-17}; SIZE=${SIZE:-176x320}; POOL=${POOL:-32}
TEST_WORLDS=${TEST_WORLDS:-16}; STATS_BATCHES=${STATS_BATCHES:-8}; PRINT_EVERY=${PRINT_EVERY:-250}
PY=${PYTHON:-python3}
HARD=${HARD:-$(awk -v m="$MAXMIN" 'BEGIN { printf "%d", (m + 0.4) * 60 }')}
OPT=()
if [ -n "${INIT:-}" ]; then OPT+=(--init-from "$INIT"); WARMUP=${WARMUP:-100}; else WARMUP=${WARMUP:-200}; fi
if [ "${CPU:-0}" = 1 ]; then OPT+=(--cpu); fi
# STEPS: a fixed step count instead of the time budget (reproducible runs, e.g. the script's own test)
if [ -n "${STEPS:-}" ]; then OPT+=(--steps "$STEPS"); else OPT+=(--time-budget "$BUDGET"); fi
export PYTHONUNBUFFERED=1
timeout -k 15 "$HARD" $PY -m lyra.train.recipes.tokenizer --out "$W/run" --config "$CONFIG" "${OPT[@]}" --data world \
  --world-preset "$WORLD_PRESET" --frames "$FRAMES" --size "$SIZE" --pool-worlds "$POOL" --colour-aug "$CAUG" \
  --seed "$SEED" --lr "$LR" --warmup "$WARMUP" --batch-size "$BATCH" --world-workers "$WORKERS" \
  --test-worlds "$TEST_WORLDS" --stats-batches "$STATS_BATCHES" \
  --max-minutes "$MAXMIN" --export-reserve "$RESERVE" --no-progress \
  --print-every "$PRINT_EVERY" --export-to "$R/export" 2>&1 | tee "$R/train.log"
rc=${PIPESTATUS[0]}
# shellcheck source=scripts/chunk_common.sh
. "$(dirname "$0")/chunk_common.sh"
finish_chunk tokenizer_gpu.sh "$rc" "$W" "$R" "$HARD"
