#!/usr/bin/env bash
# One resumable chunk of tokenizer training on one GPU (issue 18), sized for one 10-minute device call:
#
#   INIT=src/lyra/weights/tokenizer_tiny SEED=1 bash scripts/tokenizer_gpu.sh WORK_DIR RESULTS_DIR   # chunk 1
#   INIT=<chunk 1's export> SEED=2 bash scripts/tokenizer_gpu.sh WORK_DIR RESULTS_DIR                # chunk 2, ...
#
# Each chunk starts from the exported fp16 weights in INIT (a diffusers folder: config.json, weights, record) with a
# fresh AdamW (warm-up, then cosine decay over the chunk: a warm restart), trains on new training worlds (SEED k
# draws worlds 1,000,000 + k·10,000,019 + ...; the test worlds are never drawn) with the colour augmentation, and
# exports the EMA weights with latent statistics and held-out metrics (96 test-world videos: PSNR, SSIM, ΔE00;
# saturated colour patches: ΔE00) to RESULTS_DIR/export. Those three files (≤ 10 MB) are what comes back from the
# device and what the next chunk's INIT points at; the full training state (≈ 60 MB with AdamW and EMA) stays
# on the device. INIT unset: train from scratch with CONFIG (a preset or a JSON file of AutoencoderKLCosmos kwargs).
# Knobs (environment): BUDGET (training minutes, 5.5), MAXMIN (hard limit of the process, export included, 8.3),
# LR (1.5e-4), CAUG (share of colour-augmented videos, 0.3), CONFIG (tiny), BATCH (16), WORKERS (6).
# Needs CUDA, lyra.world and diffusers (carry the wheel: see docs/benchmarks.md, "Tokenizer").
set -uo pipefail
W=${1:?work dir}; R=${2:?results dir}
mkdir -p "$W" "$R"
BUDGET=${BUDGET:-5.5}; MAXMIN=${MAXMIN:-8.3}; LR=${LR:-1.5e-4}; CAUG=${CAUG:-0.3}; SEED=${SEED:-1}
CONFIG=${CONFIG:-tiny}; BATCH=${BATCH:-16}; WORKERS=${WORKERS:-6}
PY=${PYTHON:-python3}
INIT_OPT=(); WARMUP=200
if [ -n "${INIT:-}" ]; then INIT_OPT=(--init-from "$INIT"); WARMUP=100; fi
$PY -m lyra.train.recipes.tokenizer --out "$W/run" --config "$CONFIG" "${INIT_OPT[@]}" --data world --colour-aug "$CAUG" \
  --seed "$SEED" --lr "$LR" --warmup "$WARMUP" --batch-size "$BATCH" --world-workers "$WORKERS" \
  --time-budget "$BUDGET" --max-minutes "$MAXMIN" --export-reserve 1.5 --no-progress --print-every 250 \
  --export-to "$R/export" 2>&1 | tee "$R/train.log"
rc=${PIPESTATUS[0]}
cp "$W/run/metrics.csv" "$R/metrics.csv" 2>/dev/null
exit "$rc"
