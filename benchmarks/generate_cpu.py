"""CPU benchmark of ``lyra.pipeline.generate`` on the ``tiny`` preset: one image → six trajectories of
17 × 176 × 320 latents → the student's Gaussians, pruned to 20 % (6 × 17 × 22 × 40 = 89,760 → 17,951).

Input: the image of held-out test world ``--world`` (``tiny`` preset; rendering it is not timed). Stages as the
pipeline reports them (``inputs``, ``depth``, ``trajectories``, ``warp_encode``, ``denoise``, ``plucker``,
``student``, ``gaussians``), plus ``import`` (torch + diffusers + lyra) and ``load`` (all models). The first run
is :func:`~lyra.pipeline.generate` itself (cold: load + first-call allocations, end to end); the ``--repeats``
later runs reuse the loaded :class:`~lyra.pipeline.ScenePipeline` (warm). Prints a table and the peak RSS;
``--write`` stores JSON in ``docs/bench/generate_cpu.json``.

Student: ``--student DIR`` (default the shipped ``src/lyra/weights/student_tiny``; when missing, a seeded random
initialisation of the tiny student — timing does not depend on the values; the JSON says which).

    python benchmarks/generate_cpu.py [--threads 2] [--steps 35] [--repeats 1] [--write]
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

OUT = Path(__file__).resolve().parent.parent / "docs" / "bench" / "generate_cpu.json"
STAGES = ("inputs", "depth", "trajectories", "warp_encode", "denoise", "plucker", "student", "gaussians")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=35)
    ap.add_argument("--size", default=None, metavar="HxW", help="working size (default 176x320)")
    ap.add_argument("--repeats", type=int, default=1, help="warm runs after the cold generate()")
    ap.add_argument("--world", type=int, default=0, help="test world whose image is the input")
    ap.add_argument("--student", default=None, metavar="DIR", help="student export (default: the shipped one)")
    ap.add_argument("--write", action="store_true", help=f"write {OUT}")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    import diffusers  # noqa: F401

    from lyra.pipeline import ScenePipeline, generate, student_weights_dir
    from lyra.world import make_example, split_seeds

    t_import = time.perf_counter() - t0 + (t0 - T_START)
    size = tuple(int(v) for v in args.size.lower().split("x")) if args.size else None
    image = make_example(int(split_seeds("test")[args.world]), "tiny").image
    rss_before = peak_rss_mib()

    tmp = None
    student = Path(args.student) if args.student else student_weights_dir("tiny")
    kind = "given" if args.student else "shipped"
    if not (student / "student.json").is_file() and not args.student:
        from lyra.student import LatentDecoder, decoder_config

        tmp = tempfile.TemporaryDirectory()
        torch.manual_seed(0)
        cfg = decoder_config("tiny")
        student = LatentDecoder(cfg).save_pretrained(Path(tmp.name) / "student_tiny",
                                 {"preset": "tiny", "tokenizer": "tiny", "single_view": False})
        kind = "random init (no shipped student yet)"

    w0 = time.perf_counter()
    scene = generate(image, student=student, seed=0, steps=args.steps, size=size, device="cpu", progress=False)
    cold_total = time.perf_counter() - w0
    cold = dict(scene.metadata["timings_s"])
    print("cold generate(): " + ", ".join(f"{k} {v:.2f}" for k, v in cold.items()) + " s", flush=True)

    pipe = ScenePipeline.from_preset("tiny", student=student, device="cpu")
    warm = []
    for r in range(args.repeats):
        w0 = time.perf_counter()
        s = pipe(image, seed=0, steps=args.steps, size=size, progress=False)
        total = time.perf_counter() - w0
        warm.append({**{k: s.metadata["timings_s"][k] for k in STAGES}, "total": round(total, 4)})
        print(f"warm run {r + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in warm[-1].items()) + " s", flush=True)

    med = {k: round(statistics.median(w[k] for w in warm), 4) for k in warm[0]} if warm else None
    res = {
        "what": f"tiny generate(), one image -> {scene.metadata['gaussians']:,} Gaussians "
                f"(of {scene.metadata['gaussians_before_prune']:,} before pruning)",
        "student": kind, "threads": args.threads, "steps": args.steps, "size": scene.metadata["size"],
        "frames": scene.metadata["frames"], "latents": scene.metadata["latents"],
        "input": f"test world {args.world} (tiny)", "import_s": round(t_import, 3),
        "cold": {**cold, "end_to_end": round(cold_total, 4)}, "warm_runs": warm, "warm_median_s": med,
        "denoise_per_step_s": round((med or cold)["denoise"] / args.steps, 4),
        "peak_rss_mib": round(peak_rss_mib(), 1), "rss_before_load_mib": round(rss_before, 1),
        "machine": platform.machine(), "processor": platform.processor(), "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"), "command": "python " + " ".join(sys.argv),
    }
    print(f"import {t_import:.2f} s; cold generate() end to end {cold_total:.2f} s (load {cold['load']:.2f} s)"
          + (f"; warm {med['total']:.2f} s" if med else "") + f" ({args.steps} steps, {args.threads} threads); "
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
