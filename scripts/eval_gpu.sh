#!/usr/bin/env bash
# The standard 32-world scene benchmark on one GPU machine (the 2-core CPU takes hours for it):
#   lyra eval scene --worlds 32 --steps 35 (estimated depth: what a user gets), split into PARTS processes that
#   run side by side (the metrics run on the CPU cores), then joined with --merge  -> OUT/scene_eval/
# Usage (from the repo root, on a machine with CUDA, torch and the project's requirements):
#   bash scripts/eval_gpu.sh OUT_DIR        # WORLDS=32 PARTS=4 THREADS=4 LIMIT=540 (seconds per part)
# Each part writes its own report (OUT_DIR/part_K/), so a part that overruns LIMIT loses only its own worlds.
set -uo pipefail
OUT=${1:?usage: eval_gpu.sh OUT_DIR}
WORLDS=${WORLDS:-32}
PARTS=${PARTS:-4}
THREADS=${THREADS:-4}
LIMIT=${LIMIT:-540}
REPO=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"
run() { timeout "$LIMIT" python3 -c 'import sys; from lyra.cli import main; sys.exit(main(sys.argv[1:]))' "$@"; }
per=$(( (WORLDS + PARTS - 1) / PARTS ))
start=$(date +%s)
dirs=()
for (( k = 0; k < PARTS; k++ )); do
  first=$(( k * per )); n=$(( WORLDS - first < per ? WORLDS - first : per ))
  (( n > 0 )) || break
  dirs+=("$OUT/part_$k")
  OMP_NUM_THREADS=$THREADS run eval scene --first "$first" --worlds "$n" --steps 35 --out "$OUT/part_$k" \
    --no-progress --device cuda > "$OUT/part_$k.log" 2>&1 &
done
wait
echo "parts done in $(( $(date +%s) - start )) s"
tail -n 4 "$OUT"/part_*.log
run eval scene --merge "${dirs[@]}" --out "$OUT/scene_eval"
