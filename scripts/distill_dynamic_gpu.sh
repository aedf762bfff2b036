#!/usr/bin/env bash
# Lyra's dynamic mode at tiny scale, in one GPU command (issue 10): fine-tune the shipped static teacher on
# dynamic worlds, generate dynamic SDG data (with motion reversal) and a held-out set with ground truth, fine-tune
# the shipped static student on it with and without motion reversal side by side, evaluate both.
#
#   bash scripts/distill_dynamic_gpu.sh WORK_DIR RESULTS_DIR
#
# WORK_DIR holds the shards and the runs; RESULTS_DIR receives what is worth keeping: the dynamic teacher
# (teacher_tiny_dynamic.tar.gz), the dynamic student (student_tiny_dynamic.tar.gz), its ablation without motion
# reversal (student_tiny_dynamic_no_reversal.tar.gz) and every record, metric file and log (results.tar.gz).
#
# Phases (minutes; environment knobs): teacher fine-tune TEACHER_BUDGET (2.0) of training inside a hard
# TEACHER_MAX (3.0: start-up, training, export, test evaluation); SDG for SDG_MINUTES (1.8, a hard limit: the
# processes are stopped then, every shard written is complete) in SDG_PROCS (3) processes plus the held-out SDG
# (VAL_COUNT 6 val worlds, --store-gt); the two students side by side, TRAIN_BUDGET (2.0) of training inside a
# hard TRAIN_MAX (3.0); evaluation (EVAL_MAX 1.0). Defaults total about 9 minutes on one H200.
# TEACHER_FINETUNE=0 skips phase 1: the SDG then uses TEACHER_INIT as it is (the static teacher on the dynamic
# 3D cache, which item 4 of issue 18 measured as good as a fine-tune). ABLATION=0 trains only the student with
# motion reversal. COMPARE="DIR ..." also scores these student exports on the same held-out set (e.g. the shipped
# src/lyra/weights/student_tiny_dynamic), so a retrain and what it replaces are measured side by side.
# Other knobs: SDG_STEPS (16 teacher steps), SDG_SHARD (2 scenes per shard), SDG_BATCH (2 scenes per teacher
# batch, both directions: 24 trajectories), TEACHER_LR (1e-4), BATCH (4) and LR (1e-4) of the students,
# TEACHER_INIT / STUDENT_INIT (the shipped static weights), STAGES (configs/student_tiny_dynamic.json),
# EVAL_STRIDE (4: every 4th target time and the last). WORLD (tiny) = micro lets a CPU run check the plumbing:
#   WORLD=micro SDG_PROCS=1 SDG_STEPS=2 TEACHER_BUDGET=0.3 TEACHER_MAX=1.6 SDG_MINUTES=1 VAL_COUNT=2 \
#     TRAIN_BUDGET=0.3 TRAIN_MAX=1.6 BATCH=1 bash scripts/distill_dynamic_gpu.sh /tmp/dyn /tmp/dyn_results
# Needs CUDA for speed, gsplat (JIT-built here once, during the teacher fine-tune) and diffusers.
set -uo pipefail
W=${1:?work dir}; R=${2:?results dir}
mkdir -p "$W" "$R"
W=$(cd "$W" && pwd); R=$(cd "$R" && pwd)
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
TEACHER_BUDGET=${TEACHER_BUDGET:-2.0}; TEACHER_MAX=${TEACHER_MAX:-3.0}; TEACHER_LR=${TEACHER_LR:-1e-4}
SDG_MINUTES=${SDG_MINUTES:-1.8}; SDG_PROCS=${SDG_PROCS:-3}; SDG_STEPS=${SDG_STEPS:-16}
SDG_SHARD=${SDG_SHARD:-2}; SDG_BATCH=${SDG_BATCH:-2}; VAL_COUNT=${VAL_COUNT:-6}
TRAIN_BUDGET=${TRAIN_BUDGET:-2.0}; TRAIN_MAX=${TRAIN_MAX:-3.0}; EVAL_MAX=${EVAL_MAX:-1.0}
BATCH=${BATCH:-4}; LR=${LR:-1e-4}; EVAL_STRIDE=${EVAL_STRIDE:-4}; WORLD=${WORLD:-tiny}
TEACHER_INIT=${TEACHER_INIT:-src/lyra/weights/teacher_tiny}; STUDENT_INIT=${STUDENT_INIT:-src/lyra/weights/student_tiny}
STAGES=${STAGES:-configs/student_tiny_dynamic.json}
TEACHER_FINETUNE=${TEACHER_FINETUNE:-1}; ABLATION=${ABLATION:-1}; COMPARE=${COMPARE:-}
PY=${PYTHON:-python3}
CORES=$(nproc)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( CORES / (SDG_PROCS + 2) > 0 ? CORES / (SDG_PROCS + 2) : 1 ))}
secs() { $PY -c "print(max(1, int(sum(map(float, '$1'.split('+'))) * 60)))"; }  # minutes (a sum) -> seconds
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
stamp "world $WORLD, $CORES cores, OMP_NUM_THREADS=$OMP_NUM_THREADS"

# gsplat's CUDA code: build it while the teacher trains, so that the students do not both build it.
CUDA=$($PY -c "import torch; print(int(torch.cuda.is_available()))")
build=""
if [ "$CUDA" = 1 ]; then
  ( MAX_JOBS=$(( CORES / 2 > 0 ? CORES / 2 : 1 )) $PY -c "from gsplat.cuda._backend import _C; assert _C is not None; \
print('gsplat built')" > "$W/gsplat_build.log" 2>&1 ) &
  build=$!
fi

# ---- 1. the dynamic teacher: the static one fine-tuned on dynamic worlds (input: the input camera's video)
TEACHER=$TEACHER_INIT; tstatic=""
if [ "$TEACHER_FINETUNE" = 1 ]; then  # (the body is not indented: it holds a here-document)
stamp "teacher fine-tune: $TEACHER_BUDGET min of training (hard limit $TEACHER_MAX min)"
( $PY - "$TEACHER_INIT" "$WORLD" > "$W/teacher_static_on_dynamic.json" 2> "$W/teacher_static_on_dynamic.log" <<'EOF'
# The static teacher on the same dynamic test worlds (dynamic 3D cache), for comparison with the fine-tune.
import json, sys, torch
from lyra.teacher.denoiser import TeacherDenoiser
from lyra.train.recipes.teacher import evaluate_teacher
from lyra.tokenizer import Tokenizer
from lyra.world import split_seeds
dev = "cuda" if torch.cuda.is_available() else "cpu"
model = TeacherDenoiser.from_pretrained(sys.argv[1], device=dev, dtype=torch.float32)
tok = Tokenizer.from_preset("tiny").to(dev).eval()
seeds = [int(s) for s in split_seeds("test")[:2]]
print(json.dumps({"weights": sys.argv[1], **evaluate_teacher(model, tok, seeds, sys.argv[2], 8, 0, dynamic=True)}))
EOF
) &
tstatic=$!
timeout "$(secs "$TEACHER_MAX + 0.3")" $PY -m lyra.train.recipes.teacher --dynamic --init-from "$TEACHER_INIT" \
  --out "$W/teacher" --world-preset "$WORLD" --time-budget "$TEACHER_BUDGET" --max-minutes "$TEACHER_MAX" \
  --export-reserve 0.7 --lr "$TEACHER_LR" --warmup 50 --pool-worlds 32 --refresh-every 4 --test-worlds 2 \
  --ckpt-every 500 --log-every 50 --no-progress > "$W/teacher.log" 2>&1
tail -n 3 "$W/teacher.log"
TEACHER="$W/teacher/export"
if [ ! -f "$TEACHER/config.json" ]; then
  echo "no dynamic teacher export: SDG uses the static teacher $TEACHER_INIT"
  TEACHER=$TEACHER_INIT
else
  tar -czf "$R/teacher_tiny_dynamic.tar.gz" -C "$TEACHER" .
fi
fi
stamp "teacher done"

# ---- 2. dynamic SDG with motion reversal (training set, rank-split) and the held-out set with ground truth
stamp "SDG: $SDG_PROCS processes, $SDG_MINUTES min, $SDG_STEPS teacher steps"
sdg_secs=$(secs "$SDG_MINUTES")
pids=()
for r in $(seq 0 $((SDG_PROCS - 1))); do
  timeout "$sdg_secs" $PY -m lyra sdg "$W/sdg" --dynamic --teacher-weights "$TEACHER" --count 4000 --store-plucker \
    --shard-size "$SDG_SHARD" --batch "$SDG_BATCH" --steps "$SDG_STEPS" --rank "$r" --world-size "$SDG_PROCS" \
    --world-preset "$WORLD" --no-progress > "$W/sdg_rank$r.log" 2>&1 &
  pids+=($!)
done
timeout "$sdg_secs" $PY -m lyra sdg "$W/val" --dynamic --split val --count "$VAL_COUNT" --shard-size "$SDG_SHARD" \
  --batch "$SDG_BATCH" --steps "$SDG_STEPS" --store-gt --teacher-weights "$TEACHER" --world-preset "$WORLD" \
  --no-progress > "$W/sdg_val.log" 2>&1 &
vpid=$!
for p in "${pids[@]}" "$vpid"; do wait "$p"; done
cat "$W"/sdg_rank*.log "$W/sdg_val.log"
[ -n "$build" ] && { wait "$build"; cat "$W/gsplat_build.log"; }
ntrain=$(ls "$W"/sdg/shard-*.safetensors 2>/dev/null | wc -l); nval=$(ls "$W"/val/shard-*.safetensors 2>/dev/null | wc -l)
stamp "SDG done: $ntrain training shards, $nval held-out shards of $SDG_SHARD scenes"
if [ "$ntrain" = 0 ]; then echo "no training shards: stopping"; exit 1; fi
VAL_OPT=(); [ "$nval" != 0 ] && VAL_OPT=(--val-data "$W/val" --val-scenes 2)

# ---- 3. the dynamic student from the static one, with and without motion reversal, side by side
train() {  # name, extra options...
  local name=$1; shift
  timeout "$(secs "$TRAIN_MAX + 0.3")" $PY -m lyra train student --dynamic --init-from "$STUDENT_INIT" \
    --data "$W/sdg" --out "$W/$name" --stages "$STAGES" --time-budget "$TRAIN_BUDGET" --max-minutes "$TRAIN_MAX" \
    --export-reserve 0.6 --batch-size "$BATCH" --lr "$LR" --warmup 20 --schedule cosine --ema 0.99 \
    --log-every 20 --ckpt-every 500 --no-progress "${VAL_OPT[@]}" "$@" > "$W/train_$name.log" 2>&1
}
stamp "students: $TRAIN_BUDGET min of training each (hard limit $TRAIN_MAX min)"
train dynamic & m=$!
a=""; [ "$ABLATION" = 1 ] && { train dynamic_no_reversal --no-motion-reversal & a=$!; }
wait $m $a
tail -n 4 "$W"/train_*.log
stamp "training done"

pack() {
  (cd "$W" && tar -czf "$R/results.tar.gz" --exclude='sdg' --exclude='val' --exclude='checkpoints' \
    --exclude='*.safetensors' .)
}
pack  # early, in case the time limit cuts what follows
[ -f "$W/dynamic/export/model.safetensors" ] && tar -czf "$R/student_tiny_dynamic.tar.gz" -C "$W/dynamic/export" .
[ -f "$W/dynamic_no_reversal/export/model.safetensors" ] && \
  tar -czf "$R/student_tiny_dynamic_no_reversal.tar.gz" -C "$W/dynamic_no_reversal/export" .

# ---- 4. held-out evaluation: fidelity at target times (vs the teacher's frames) and ground truth
if [ "$nval" != 0 ]; then
  evals=()
  names=()
  for name in dynamic dynamic_no_reversal; do
    [ -f "$W/$name/export/model.safetensors" ] || continue
    timeout "$(secs "$EVAL_MAX")" $PY -m lyra.distill.evaluate --student "$W/$name/export" --data "$W/val" --scenes 0 \
      --gt --frame-stride "$EVAL_STRIDE" --json "$W/${name}_eval.json" --no-progress > "$W/${name}_eval.log" 2>&1 &
    evals+=($!); names+=("$name")
  done
  k=0
  for dir in $COMPARE; do  # other exports on the same held-out scenes: compare_<k>_eval.json
    timeout "$(secs "$EVAL_MAX")" $PY -m lyra.distill.evaluate --student "$dir" --data "$W/val" --scenes 0 \
      --gt --frame-stride "$EVAL_STRIDE" --json "$W/compare_${k}_eval.json" --no-progress > "$W/compare_${k}_eval.log" 2>&1 &
    evals+=($!); names+=("compare_$k"); echo "compare_$k = $dir"; k=$((k + 1))
  done
  for p in "${evals[@]}"; do wait "$p"; done
  for name in "${names[@]}"; do echo "== $name"; cat "$W/${name}_eval.log" 2>/dev/null; done
fi
[ -n "$tstatic" ] && { wait "$tstatic"; echo "static teacher on dynamic test worlds: $(cat "$W/teacher_static_on_dynamic.json")"; }
stamp "all done"
pack
ls -la "$R"
