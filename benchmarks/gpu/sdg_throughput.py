"""GPU benchmark: SDG throughput (scenes per minute) of the ``tiny`` teacher on procedural worlds.

Runs :func:`lyra.distill.sdg.generate_sdg` exactly as ``lyra sdg`` does (train-split worlds, 35 steps,
depth estimated by the tiny depth net, shards written to a temporary folder) for each ``--batch`` size,
after one warm-up shard, and prints scenes/min with a breakdown: world rendering, teacher (depth + warp +
sampler + decode), frame depth, and the rest (uint8 conversion, shard writing). Uses the shipped
``teacher_tiny`` weights when present, else a randomly initialised tiny denoiser (throughput does not
depend on the weight values; the output says which).

    python benchmarks/gpu/sdg_throughput.py [--count 64] [--batch 1,8] [--steps 35] [--json out.json]

Several GPUs (issue 11): each process makes its own shards; rank 0 reports the total scenes/min over the
wall time between two barriers::

    accelerate launch --num_processes 2 benchmarks/gpu/sdg_throughput.py --count 64 --json out2.json

Without CUDA it says so and exits 0 (``--device cpu`` runs it on the CPU, e.g. ``--count 2 --steps 2``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch


class Timed:
    """Wraps a callable attribute of ``obj`` and accumulates its wall time (CUDA-synchronised)."""

    def __init__(self, fn, sync: bool) -> None:
        self.fn, self.sync, self.seconds = fn, sync, 0.0

    def __call__(self, *args, **kwargs):
        if self.sync:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = self.fn(*args, **kwargs)
        if self.sync:
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - t0
        return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=64, help="scenes per measured run (default 64)")
    p.add_argument("--batch", default="1,8", help="comma-separated teacher batch sizes to measure (default 1,8)")
    p.add_argument("--shard-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=35)
    p.add_argument("--device", default="auto", help="auto (CUDA, else skip), cuda or cpu")
    p.add_argument("--out", default=None, help="folder for the shards (default: a temporary folder, deleted)")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    args = p.parse_args(argv)

    from accelerate import PartialState

    state = PartialState()
    if args.device == "auto":
        if not torch.cuda.is_available():
            print("sdg_throughput: no CUDA GPU here; skipped (use --device cpu for a CPU run)")
            return 0
        device = state.device if state.device.type == "cuda" else torch.device("cuda")
    else:
        device = torch.device(args.device)
    sync = device.type == "cuda"
    if sync:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    from lyra.distill.sdg import PipelineTeacher, WorldSource, generate_sdg
    from lyra.teacher.denoiser import TeacherDenoiser
    from lyra.teacher.pipeline import TeacherPipeline, teacher_weights_dir
    from lyra.weights.hub import depth_net_dir, tokenizer_dir

    # one folder for all processes of a launch (they share the launcher as parent)
    tmp = Path(tempfile.gettempdir()) / f"sdg_bench_{os.getppid()}"
    tmp.mkdir(exist_ok=True)
    weights = teacher_weights_dir("tiny")
    shipped = (weights / "config.json").is_file()
    if not shipped:
        weights = tmp / f"teacher_random_rank{state.process_index}"
        TeacherDenoiser.from_config("tiny", seed=0).save_pretrained(weights)
    pipe = TeacherPipeline.from_preset("tiny", weights=weights, device=device)
    teacher = PipelineTeacher(pipe, tokenizer_dir("tiny"), depth_net_dir("tiny"))
    source = WorldSource("train", "tiny", device=device)
    frame_depth = Timed(pipe.depth_estimator, sync)
    source.load = Timed(source.load, sync)
    teacher.generate = Timed(teacher.generate, sync)
    root = Path(args.out) if args.out else tmp

    results = []
    batches = [int(b) for b in args.batch.split(",")]
    for run, batch in enumerate([batches[0]] + batches):  # run 0: warm-up (one shard; CUDA init, cuDNN autotune)
        warm = run == 0
        out = root / ("warmup" if warm else f"batch{batch}")
        count = args.shard_size * state.num_processes if warm else args.count
        start = 10_000 * run  # fresh worlds for every run
        for t in (frame_depth, source.load, teacher.generate):
            t.seconds = 0.0
        if sync:
            torch.cuda.reset_peak_memory_stats(device)
        state.wait_for_everyone()
        t0 = time.perf_counter()
        rep = generate_sdg(out, source, teacher, frame_depth, preset="tiny", start=start, count=count,
                           shard_size=args.shard_size, steps=args.steps, batch_size=batch,
                           depth_hash=teacher.weight_hashes()["depth"], device=device, progress=False)
        state.wait_for_everyone()
        wall = time.perf_counter() - t0
        if warm:
            continue
        per_rank = {"rank": state.process_index, "scenes": rep.samples, "seconds": rep.seconds,
                    "world_s": source.load.seconds, "teacher_s": teacher.generate.seconds,
                    "frame_depth_s": frame_depth.seconds,
                    "other_s": rep.seconds - source.load.seconds - teacher.generate.seconds - frame_depth.seconds,
                    "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if sync else None}
        shard_bytes = sum(f.stat().st_size for f in out.glob("shard-*.safetensors"))
        res = {"batch": batch, "scenes": args.count, "processes": state.num_processes, "wall_s": wall,
               "scenes_per_min": 60.0 * args.count / wall, "shard_mib": shard_bytes / 2**20 / max(1, rep.samples),
               "rank0": per_rank}
        results.append(res)
        if state.is_main_process:
            print(f"batch {batch:2d}: {args.count} scenes in {wall:.1f} s on {state.num_processes} process(es) = "
                  f"{res['scenes_per_min']:.1f} scenes/min | rank 0: world {per_rank['world_s']:.1f} s, teacher "
                  f"{per_rank['teacher_s']:.1f} s, frame depth {per_rank['frame_depth_s']:.1f} s, other "
                  f"{per_rank['other_s']:.1f} s; peak GPU memory "
                  f"{'n/a' if per_rank['peak_gib'] is None else format(per_rank['peak_gib'], '.1f') + ' GiB'}; "
                  f"{res['shard_mib']:.1f} MiB per scene on disk", flush=True)
    if state.is_main_process:
        info = {"device": torch.cuda.get_device_name(device) if sync else "cpu", "torch": torch.__version__,
                "teacher": "shipped teacher_tiny" if shipped else "random tiny denoiser (weights do not change speed)",
                "steps": args.steps, "shard_size": args.shard_size, "results": results}
        print(json.dumps({k: v for k, v in info.items() if k != "results"}))
        if args.json:
            Path(args.json).write_text(json.dumps(info, indent=2) + "\n")
            print(f"wrote {args.json}")
    if not args.out:
        state.wait_for_everyone()
        if state.is_main_process:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
