# Shell function shared by the resumable GPU chunk scripts (scripts/tokenizer_gpu.sh, scripts/teacher_gpu.sh);
# source this file.

# finish_chunk NAME RC W R HARD: after a trainer ran (exit status RC, run folder W/run, results folder R), keep its
# curve in R/metrics.csv, say why it stopped, and turn RC into the script's exit status: 3 when the trainer exited 0
# but R/export lacks config.json, the weights or a training record with held-out test metrics. Everything said is
# appended to R/train.log. Prints "NAME: exit N" last and returns N.
finish_chunk() {
  local name=$1 rc=$2 w=$3 r=$4 hard=$5 f
  say() { echo "$name: $*" | tee -a "$r/train.log"; }
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then say "stopped after HARD=$hard s"; fi
  cp "$w/run/metrics.csv" "$r/metrics.csv" 2>/dev/null || say "no metrics.csv in $w/run"
  if [ "$rc" = 0 ]; then
    for f in config.json diffusion_pytorch_model.safetensors training_record.json; do
      if [ ! -s "$r/export/$f" ]; then say "the trainer exited 0 but $r/export/$f is missing"; rc=3; fi
    done
    if [ "$rc" = 0 ] && ! grep -q '"test"' "$r/export/training_record.json"; then
      say "$r/export/training_record.json holds no held-out test metrics"; rc=3
    fi
  fi
  say "exit $rc"
  return "$rc"
}
