#!/usr/bin/env bash
# As run for docs/benchmarks.md (issue 18, 'Candidates measured'): one device call, from the lead's checkout with
# this session's tokenizer sources and the diffusers wheel carried in .wt/tokrun/ (cfg/ = the *.config.json here):
#   CANDS="D E C32 T4" BUDGET=6 MAXMIN=8.9 bash .wt/tokrun/run1.sh
# (its baseline step failed on the device: a spawn pool cannot re-import a script read from stdin).
# Chunk 1: four candidate tiny tokenizers side by side on one GPU, from scratch, each exported with held-out metrics.
set -u
cp -r .wt/tokrun/src/lyra/tokenizer src/lyra/ && cp .wt/tokrun/src/lyra/eval/metrics.py src/lyra/eval/
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .wt/tokrun/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
W=/tmp/w; mkdir -p $W; nvidia-smi --query-gpu=name,memory.used --format=csv
python3 - > $OUT/baseline_tiny.json 2> $W/baseline.log <<'PY' &
import json, torch
from lyra.tokenizer import Tokenizer
from lyra.tokenizer.training import eval_videos, evaluate_reconstruction, evaluate_colour_patches
tok = Tokenizer.from_preset("tiny", device="cuda", max_batch=6)
vids, desc = eval_videos("world", 16, 17, 176, 320, "cuda", "tiny", workers=2)
r = evaluate_reconstruction(tok, vids)
print(json.dumps({"test": {**desc, **r}, "colour_patches": evaluate_colour_patches(tok)}, indent=1))
PY
for k in $CANDS; do
  python3 -m lyra.tokenizer.train --out $W/$k --config .wt/tokrun/cfg/$k.json --data world --colour-aug 0.5 \
    --time-budget $BUDGET --max-minutes $MAXMIN --export-reserve 2.2 --world-workers 3 --no-progress --print-every 200 \
    --export-to $W/$k/export > $W/$k.log 2>&1 &
done
wait
for k in $CANDS; do tail -3 $W/$k.log; tar -C $W/$k -cf $OUT/$k.tar export; done
tar -C $W -czf $OUT/logs.tgz --exclude=checkpoints --exclude=export $(cd $W && ls)
cat $OUT/baseline_tiny.json | head -c 600
