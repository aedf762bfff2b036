"""CPU benchmark of the ``tiny`` teacher: one image → six trajectories of 17 × 176 × 320, decoded (target ≤ 30 s
on 2 cores, tokenizer decode included).

Input: the image of held-out test world 0 (``tiny`` preset; rendering it is not timed). Stages, as
``lyra teacher`` runs them: ``import`` (torch + diffusers + lyra), ``load`` (denoiser, tokenizer, depth net),
``depth`` (the shipped depth net), ``trajectories``, ``warp_encode`` (point cache + forward warp of 6 × 17
frames, tokenizer encode of the warped videos; ``warp`` alone is timed separately), ``denoise`` (``--steps``
Euler steps, six trajectories batched; per-step times from a hook), ``decode`` (tokenizer, 6 videos). The
pipeline runs ``--repeats`` times: the first run is cold (first-call allocations), the later ones warm.
Prints a table and the peak RSS; ``--write`` stores JSON in ``docs/bench/teacher_cpu.json``.

Weights: the shipped ``src/lyra/weights/teacher_tiny`` when present, else a seeded random initialisation
of the same architecture (timing does not depend on the values; the JSON says which).

    python benchmarks/teacher_cpu.py [--threads 2] [--steps 35] [--repeats 2] [--write]
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

T_START = time.perf_counter()
import torch  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "bench" / "teacher_cpu.json"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=35)
    ap.add_argument("--repeats", type=int, default=2, help="pipeline runs (the first is cold)")
    ap.add_argument("--world", type=int, default=0, help="test world whose image is the input")
    ap.add_argument("--weights", default=None, help="teacher folder (default: shipped, else random init)")
    ap.add_argument("--write", action="store_true", help=f"write {OUT}")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    import diffusers  # noqa: F401

    from lyra.teacher.cache3d import PointCache, warp
    from lyra.teacher.denoiser import TeacherDenoiser
    from lyra.teacher.pipeline import TeacherPipeline, teacher_weights_dir
    from lyra.world import make_example, split_seeds

    t_import = time.perf_counter() - t0 + (t0 - T_START)

    ex = make_example(int(split_seeds("test")[args.world]), "tiny")
    image = ex.image
    rss_before_load = peak_rss_mib()

    weights = Path(args.weights) if args.weights else teacher_weights_dir("tiny")
    tmp = None
    kind = "shipped" if not args.weights else "given"
    if not (weights / "config.json").is_file():
        tmp = tempfile.TemporaryDirectory()
        weights = Path(tmp.name) / "teacher_tiny"
        TeacherDenoiser.from_config("tiny", seed=0).save_pretrained(weights, torch.float16)
        kind = "random init (no shipped weights yet)"
    pipe = TeacherPipeline.from_preset("tiny", weights=weights, depth="tiny", device="cpu")
    t_load = pipe.load_seconds

    step_times: list[float] = []
    forward = pipe.denoiser.forward

    def timed_forward(*a, **k):
        s = time.perf_counter()
        r = forward(*a, **k)
        step_times.append(time.perf_counter() - s)
        return r

    pipe.denoiser.forward = timed_forward
    runs = []
    for r in range(args.repeats):
        step_times.clear()
        w0 = time.perf_counter()
        out = pipe(image, seed=0, steps=args.steps, progress=False)
        pipe.decode(out)
        total = time.perf_counter() - w0
        runs.append({**{k: round(v, 4) for k, v in out.timings.items()}, "pipeline_total": round(total, 4),
                     "step_median": round(statistics.median(step_times), 4), "step_min": round(min(step_times), 4),
                     "step_max": round(max(step_times), 4)})
        print(f"run {r + 1} ({'cold' if r == 0 else 'warm'}): " + ", ".join(f"{k} {v:.2f}" for k, v in runs[-1].items())
              + " s", flush=True)

    # the warp alone (same inputs), to split warp_encode
    w0 = time.perf_counter()
    cache = PointCache.from_depth(out.image, out.depth, out.input_camera)
    warp(cache, out.cameras)
    t_warp = time.perf_counter() - w0

    best = min(runs, key=lambda x: x["pipeline_total"])
    cold = runs[0]
    res = {
        "what": "tiny teacher, one image -> 6 trajectories x 17 x 176 x 320, decoded",
        "weights": kind, "denoiser_parameters": pipe.denoiser.num_parameters(),
        "tokenizer_parameters": pipe.tokenizer.num_parameters(), "threads": args.threads, "steps": args.steps,
        "latents": list(out.latents.shape), "input": f"test world {args.world} (tiny)",
        "import_s": round(t_import, 3), "load_s": round(t_load, 3), "warp_alone_s": round(t_warp, 3),
        "runs": runs,
        "cold_total_with_load_s": round(t_load + cold["pipeline_total"], 3),
        "warm_total_s": best["pipeline_total"],
        "peak_rss_mib": round(peak_rss_mib(), 1), "rss_before_load_mib": round(rss_before_load, 1),
        "machine": platform.machine(), "processor": platform.processor(), "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"), "note": "provisional: the 2 cores were shared with other jobs",
        "command": "python " + " ".join(sys.argv),
    }
    print(f"import {t_import:.2f} s, load {t_load:.2f} s, warp alone {t_warp:.2f} s; cold pipeline + load "
          f"{res['cold_total_with_load_s']:.2f} s, warm {res['warm_total_s']:.2f} s ({args.steps} steps, "
          f"{best['step_median']:.3f} s median per step, {args.threads} threads); "
          f"peak RSS {res['peak_rss_mib']:.0f} MiB")
    if args.write:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(res, indent=2) + "\n")
        print(f"wrote {OUT}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
