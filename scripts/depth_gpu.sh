#!/usr/bin/env bash
# One resumable chunk of depth-net training on one GPU (issue 20 item 2), sized for one 10-minute device call:
#
#   INIT=src/lyra/weights/depth_tiny SEED=1 bash scripts/depth_gpu.sh WORK_DIR RESULTS_DIR   # chunk 1
#   INIT=<chunk 1's export> SEED=2 bash scripts/depth_gpu.sh WORK_DIR RESULTS_DIR             # chunk 2, ...
#
# Each chunk starts from exported fp16 weights in INIT (config.json, model.safetensors, training_record.json)
# with a fresh AdamW (warm-up, then cosine decay over STEPS: a warm restart), trains on new training worlds
# (SEED k) with the camera and photometric augmentation (lyra.train.recipes.depth_augment), and exports the
# EMA weights with the held-out test-world metrics to RESULTS_DIR/export (3.8 MB: what comes back from the
# device and what the next chunk's INIT points at), plus metrics.csv and the log. The world pool is rendered
# before the first step (about 80 s on an H200); a step then takes about 0.17 s at batch 32.
# Knobs (environment): STEPS (2400), MAXMIN (hard limit of the process, export included, 9.0), LR (3e-4),
# WORLD_STYLE (classic | photo: the photo-style training worlds of lyra.world.photo; the test worlds stay classic).
# On photo worlds a world costs more to make (see docs/worlds.md), so the pool takes longer to fill.
# Then, here: copy the export into src/lyra/weights/depth_tiny and run `lyra eval real --depth-only` (real photos)
# and `lyra eval scene --worlds 32` (the procedural benchmark the README quotes) before shipping it.
set -uo pipefail
W=${1:?work dir}; R=${2:?results dir}
mkdir -p "$W" "$R"
INIT=${INIT:-src/lyra/weights/depth_tiny}; SEED=${SEED:-1}; STEPS=${STEPS:-2400}; MAXMIN=${MAXMIN:-9.0}
LR=${LR:-3e-4}; WORLD_STYLE=${WORLD_STYLE:-classic}
PY=${PYTHON:-python3}
$PY -m lyra.train.recipes.depth --out "$W/run" --init-from "$INIT" --seed "$SEED" --lr "$LR" --warmup 200 \
  --steps "$STEPS" --max-minutes "$MAXMIN" --export-reserve 1.2 --export-to "$R/export" --no-progress \
  --world-style "$WORLD_STYLE" \
  --log-every 100 2>&1 | tee "$R/train.log"
rc=${PIPESTATUS[0]}
cp "$W/run/metrics.csv" "$R/metrics.csv" 2>/dev/null
exit "$rc"
