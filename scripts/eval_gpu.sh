#!/usr/bin/env bash
# The standard 32-world benchmarks on one GPU (the 2-core CPU takes hours for them):
#   lyra eval scene   --worlds 32 --steps 35   (estimated depth: what a user gets)      -> OUT/scene_eval/
#   lyra eval teacher --worlds 32 --steps 35   (exact depth: the teacher alone)        -> OUT/teacher_eval/
# Usage (from the repo root, on a machine with CUDA, torch and the project's requirements):
#   bash scripts/eval_gpu.sh OUT_DIR            # WORLDS=N to change the count; EVAL=scene|teacher for one of them
# Each evaluation has its own time limit (LIMIT seconds, default 270) so that one overrun cannot lose the other.
set -uo pipefail
OUT=${1:?usage: eval_gpu.sh OUT_DIR}
WORLDS=${WORLDS:-32}
LIMIT=${LIMIT:-270}
EVAL=${EVAL:-scene teacher}
REPO=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"
lyra() { python3 -c 'import sys; from lyra.cli import main; sys.exit(main(sys.argv[1:]))' "$@"; }
status=0
for what in $EVAL; do
  start=$(date +%s)
  timeout "$LIMIT" bash -c "$(declare -f lyra); lyra eval $what --worlds $WORLDS --steps 35 --out '$OUT/${what}_eval' \
    --no-progress --device cuda" || { echo "lyra eval $what failed or ran past ${LIMIT}s"; status=1; }
  echo "lyra eval $what: $(( $(date +%s) - start )) s"
done
exit $status
