#!/usr/bin/env bash
# The 32-world mesh-accuracy benchmark on one GPU machine (the 2-core CPU takes hours for it):
#   lyra eval mesh --worlds 32 --steps 35 (estimated depth), split into PARTS processes that run side by side
#   (the scenes are generated on the GPU; meshing and the Chamfer/F-score metrics run on the CPU cores, THREADS
#   each), then joined with --merge  -> OUT/mesh_eval/ (mesh_eval.md, mesh_eval.json)
# Usage (from the repo root, on a machine with torch and the project's requirements):
#   bash scripts/eval_mesh_gpu.sh OUT_DIR   # WORLDS=32 PARTS=16 THREADS=1 LIMIT=540 DEVICE=cuda PYTHON=python3
#                                           # STUDENT=DIR WEIGHTS=DIR (default: the shipped models)
# Each part writes its report (OUT_DIR/part_K/) after every world, so a part that overruns LIMIT loses only the
# worlds it had not finished; the merged report lists those under "missing". Scenes are cached in OUT_DIR/cache.
# The GPU image lacks trimesh and fast-simplification (and diffusers, plyfile, zstandard): carry their wheels in
# .wheels/ (see docs/benchmarks.md, "Mesh export"); when an import fails, this script installs .wheels/*.whl into
# /tmp/site.
set -uo pipefail
OUT=${1:?usage: eval_mesh_gpu.sh OUT_DIR}
WORLDS=${WORLDS:-32}
PARTS=${PARTS:-16}
THREADS=${THREADS:-1}
LIMIT=${LIMIT:-540}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
REPO=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
check='import trimesh, fast_simplification, skimage, scipy, plyfile, diffusers'
if ! "$PY" -c "$check" 2> /dev/null && compgen -G "$REPO/.wheels/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$REPO"/.wheels/*.whl || exit 1
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
"$PY" -c "$check" || { echo "a package is missing: carry its wheel in .wheels/ (docs/benchmarks.md, Mesh export)"; exit 1; }
mkdir -p "$OUT"
extra=()
[[ -n "${STUDENT:-}" ]] && extra+=(--student "$STUDENT")
[[ -n "${WEIGHTS:-}" ]] && extra+=(--weights "$WEIGHTS")
run() { timeout "$LIMIT" "$PY" -c 'import sys; from lyra.cli import main; sys.exit(main(sys.argv[1:]))' "$@"; }
per=$(( (WORLDS + PARTS - 1) / PARTS ))
start=$(date +%s)
dirs=()
for (( k = 0; k < PARTS; k++ )); do
  first=$(( k * per )); n=$(( WORLDS - first < per ? WORLDS - first : per ))
  (( n > 0 )) || break
  dirs+=("$OUT/part_$k")
  OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS run eval mesh --first "$first" --worlds "$n" --steps 35 \
    --out "$OUT/part_$k" --cache "$OUT/cache" --device "$DEVICE" "${extra[@]}" > "$OUT/part_$k.log" 2>&1 &
done
wait
echo "parts done in $(( $(date +%s) - start )) s"
tail -n 3 "$OUT"/part_*.log
done_dirs=()
for d in "${dirs[@]}"; do [[ -f "$d/mesh_eval.json" ]] && done_dirs+=("$d"); done
(( ${#done_dirs[@]} > 0 )) || { echo "no part finished a world"; exit 1; }
"$PY" -c 'import sys; from lyra.cli import main; sys.exit(main(sys.argv[1:]))' eval mesh --merge "${done_dirs[@]}" \
  --out "$OUT/mesh_eval"
