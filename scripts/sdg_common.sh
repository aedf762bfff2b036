# Shell functions shared by the GPU recipes that make their own SDG data (scripts/distill_tiny_gpu.sh,
# scripts/student_chunks_gpu.sh); source this file. Both read the caller's variables: W (work dir), PY (python),
# CORES; sdg_train_and_val also SDG_PROCS, SDG_MINUTES, SDG_STEPS, VAL_COUNT, WORLD and the caller's stamp().

# gsplat's CUDA code, built in the background on a quarter of the cores (the trainers need it); its pid in
# GSPLAT_PID, its log in $W/gsplat_build.log. GSPLAT=0 skips it (a CPU plumbing run).
gsplat_build_start() {
  if [ "${GSPLAT:-1}" = 1 ]; then
    ( MAX_JOBS=$(( CORES / 4 > 0 ? CORES / 4 : 1 )) $PY -c \
        "from gsplat.cuda._backend import _C; assert _C is not None; print('gsplat built')" \
      > "$W/gsplat_build.log" 2>&1 ) &
  else
    ( echo "gsplat build skipped (GSPLAT=0)" > "$W/gsplat_build.log" ) &
  fi
  GSPLAT_PID=$!
}

# SDG_PROCS processes of train-split SDG (Plücker latents stored) for SDG_MINUTES minutes into $W/sdg, and the
# held-out SDG (VAL_COUNT val worlds, ground truth stored) into $W/val, sharing the cores evenly (threads capped:
# uncapped, every process spins one OpenMP thread per core). Logs: $W/sdg_rank<r>.log, $W/sdg_val.log.
# COMPOSITE=1: the training SDG stores composite targets (lyra sdg --composite: the warp where it sees, the teacher
# in its holes); the held-out SDG keeps the teacher's frames, so that fidelity stays comparable across runs.
sdg_train_and_val() {
  local comp=()
  if [ "${COMPOSITE:-0}" = 1 ]; then comp=(--composite); fi
  export OMP_NUM_THREADS=$(( CORES / (SDG_PROCS + 1) > 0 ? CORES / (SDG_PROCS + 1) : 1 ))
  stamp "SDG: $SDG_PROCS processes x $OMP_NUM_THREADS threads, $SDG_MINUTES min, $SDG_STEPS teacher steps"
  local pids=() r
  for r in $(seq 0 $((SDG_PROCS - 1))); do
    $PY -m lyra sdg "$W/sdg" --count 4000 --shard-size 8 --steps "$SDG_STEPS" --rank "$r" --store-plucker "${comp[@]}" \
      --world-size "$SDG_PROCS" --world-preset "$WORLD" --max-minutes "$SDG_MINUTES" --no-progress \
      > "$W/sdg_rank$r.log" 2>&1 &
    pids+=($!)
  done
  $PY -m lyra sdg "$W/val" --split val --count "$VAL_COUNT" --shard-size 8 --steps "$SDG_STEPS" --store-gt \
    --world-preset "$WORLD" --no-progress > "$W/sdg_val.log" 2>&1
  for r in "${pids[@]}"; do wait "$r"; done
}
