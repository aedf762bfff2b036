"""GPU benchmark of ``lyra.pipeline.generate`` (image → pruned Gaussians) on CUDA: per-stage times with CUDA
synchronisation, end to end, peak GPU memory.

Input: the image of held-out test world ``--world`` (``tiny`` world preset; rendering it is not timed). The models
are loaded once (timed as ``load``), then ``--warmup`` untimed runs, then ``--repeats`` timed runs of
:class:`lyra.pipeline.ScenePipeline` (the work of :func:`~lyra.pipeline.generate` without reloading). Stages:
``inputs``, ``depth``, ``trajectories``, ``warp_encode``, ``denoise`` (``--steps`` Euler steps, six trajectories
batched), ``plucker`` (Plücker latents through the tokenizer encoder), ``student`` (3DGS decoder), ``gaussians``
(activations + pruning to 20 %, copy to the CPU), ``decode_videos`` (only with ``--decode-videos``). The teacher's
stage functions are wrapped so that each ends with ``torch.cuda.synchronize()``; the pipeline's own stages
synchronise on CUDA already. Peak memory: ``torch.cuda.max_memory_allocated`` over one run (after a reset; in
low-memory mode, where the pipeline resets the counter per stage, its ``scene.metadata["peak_gib"]["run"]``), and
the process's peak RSS.

Student: ``--student DIR`` (default the shipped ``src/lyra/weights/student_tiny``; when that is missing, a seeded
random initialisation of the tiny student — timing does not depend on the values; the JSON says which).

Usage on the GPU machine (repository root):
    python3 benchmarks/gpu/generate_gpu.py [--steps 35] [--repeats 3] [--json $OUT/generate_gpu.json]
Runs on the CPU too (wall-clock times, no GPU memory) for smoke tests: ``--device cpu --size 48x80 --steps 1``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

STAGES = ("inputs", "depth", "trajectories", "warp_encode", "denoise", "plucker", "student", "gaussians",
          "decode_videos")


def log(msg: str) -> None:
    print(msg, flush=True)


def synced(fn, device: torch.device):
    """``fn`` followed by a CUDA synchronisation (so the teacher's stage timers measure finished work)."""

    def wrapper(*a, **k):
        out = fn(*a, **k)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out

    return wrapper


def random_student(folder: Path) -> Path:
    from lyra.student import LatentDecoder, decoder_config

    torch.manual_seed(0)
    cfg = decoder_config("tiny")
    return LatentDecoder(cfg).save_pretrained(folder,
                          {"preset": "tiny", "tokenizer": "tiny", "single_view": False})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", default=None, metavar="DIR", help="student export (default: the shipped one)")
    ap.add_argument("--preset", default="tiny", choices=("tiny", "official"))
    ap.add_argument("--weights", default=None, metavar="DIR", help="weights folder (see lyra.pipeline)")
    ap.add_argument("--steps", type=int, default=35)
    ap.add_argument("--size", default=None, metavar="HxW", help="working size (default: the preset's)")
    ap.add_argument("--world", type=int, default=0, help="test world whose image is the input")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--decode-videos", action="store_true", help="also time the tokenizer decode of the videos")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON")
    args = ap.parse_args()

    import lyra.teacher.pipeline as tp
    from lyra.eval.report import display_path
    from lyra.pipeline import ScenePipeline, student_weights_dir
    from lyra.world import make_example, split_seeds

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    size = tuple(int(v) for v in args.size.lower().split("x")) if args.size else None
    image = make_example(int(split_seeds("test")[args.world]), "tiny").image

    tmp = None
    student = Path(args.student) if args.student else student_weights_dir(args.preset)
    kind = "given" if args.student else "shipped"
    if args.preset == "tiny" and not (student / "student.json").is_file() and not args.student:
        tmp = tempfile.TemporaryDirectory()
        student = random_student(Path(tmp.name) / "student_tiny")
        kind = "random init (no shipped student yet)"
    if args.preset == "official" and not args.student:
        student = None

    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    pipe = ScenePipeline.from_preset(args.preset, weights=args.weights, student=student, depth="tiny", device=device)
    if cuda:
        torch.cuda.synchronize(device)
    t_load = time.perf_counter() - t0
    log(f"load {t_load:.2f} s on {device} ({torch.cuda.get_device_name(device) if cuda else platform.processor()})")

    # every teacher stage ends with a synchronisation
    tp.warp_conditions = synced(tp.warp_conditions, device)
    tp.sample = synced(tp.sample, device)
    if pipe.teacher.depth_estimator is not None:
        pipe.teacher.depth_estimator = synced(pipe.teacher.depth_estimator, device)

    def run():
        return pipe(image, seed=args.seed, steps=args.steps, size=size, progress=False,
                    decode_videos=args.decode_videos)

    for w in range(args.warmup):
        t0 = time.perf_counter()
        run()
        log(f"warm-up {w + 1}: {time.perf_counter() - t0:.3f} s")

    runs = []
    peak_gpu = float("nan")
    for r in range(args.repeats):
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        scene = run()
        if cuda:  # in low-memory mode the pipeline resets the peak counter per stage; its "run" peak covers all
            torch.cuda.synchronize(device)
            run_peak = (scene.metadata.get("peak_gib") or {}).get("run", 0.0)
            peak_gpu = max(0.0 if peak_gpu != peak_gpu else peak_gpu, run_peak,
                           torch.cuda.max_memory_allocated(device) / 2**30)
        total = time.perf_counter() - t0
        tm = scene.metadata["timings_s"]
        runs.append({**{k: tm[k] for k in STAGES if k in tm}, "total": round(total, 4)})
        log(f"run {r + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in runs[-1].items()) + " s")

    med = {k: round(statistics.median(r[k] for r in runs), 4) for k in runs[0]}
    res = {
        "what": f"lyra.pipeline generate ({args.preset}), one image -> {scene.metadata['gaussians']:,} Gaussians "
                f"(of {scene.metadata['gaussians_before_prune']:,} before pruning)",
        "device": torch.cuda.get_device_name(device) if cuda else f"cpu ({torch.get_num_threads()} threads)",
        "student": kind,
        "student_path": display_path(student) if kind != "random init (no shipped student yet)" else None,
        "size": scene.metadata["size"], "frames": scene.metadata["frames"], "latents": scene.metadata["latents"],
        "steps": args.steps, "seed": args.seed, "warmup": args.warmup, "repeats": args.repeats,
        "decode_videos": args.decode_videos, "load_s": round(t_load, 3),
        "median_s": med, "runs": runs, "denoise_per_step_s": round(med["denoise"] / args.steps, 4),
        "end_to_end_median_s": med["total"],
        "peak_gpu_gib": None if not cuda else round(peak_gpu, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "gaussians": scene.metadata["gaussians"], "gaussians_before_prune": scene.metadata["gaussians_before_prune"],
        "torch": torch.__version__, "cuda": torch.version.cuda, "date": time.strftime("%Y-%m-%d"),
        "command": "python " + " ".join(sys.argv),
    }
    log(f"end to end (median of {args.repeats}): {med['total']:.3f} s; stages: "
        + ", ".join(f"{k} {med[k]:.3f}" for k in STAGES if k in med)
        + (f"; peak GPU {res['peak_gpu_gib']:.2f} GiB" if cuda else "") + f"; peak RSS {res['peak_rss_mib']:.0f} MiB")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
        log(f"wrote {args.json}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
