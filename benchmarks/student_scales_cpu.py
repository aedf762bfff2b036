"""Where the latent head's Gaussians sit and how large they are, for several students on the same teacher output.

For each of the first ``--worlds`` held-out test worlds the teacher runs once (estimated depth, the world's six
ground-truth trajectories, as ``lyra eval scene``); every student given then decodes the same latents, and its
delivered (pruned to 20 %) Gaussians are described:

* ``at_cap``: the fraction the decoder flags at its own scale cap (:meth:`LatentDecoder.scale_saturation`);
* ``over_0.3``: the fraction whose largest scale is ≥ 0.3 scene units (the release's cap, for comparison);
* ``cells_p05/p50/p95``: the largest scale in units of the emitting ray's cell footprint (distance × angular pitch
  of an 8 × 8-pixel cell); ``scale_p50`` in scene units;
* ``depth_p05/p50/p95``: the centres' z-depth in the input camera, beside the true input depth's.

    python benchmarks/student_scales_cpu.py --worlds 4 --students shipped=src/lyra/weights/student_tiny \\
        footprint=DIR world=DIR [--steps 35] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch


def _pct(v: torch.Tensor, qs: tuple[float, ...] = (0.05, 0.5, 0.95)) -> list[float]:
    v = v[torch.isfinite(v)].double()
    return [round(float(x), 4) for x in torch.quantile(v, torch.tensor(qs, dtype=v.dtype))]


def describe(model, raw: torch.Tensor, cams, input_camera, prune_ratio: float) -> dict[str, float]:
    """Statistics of one student's raw output ``[N, 14]`` (cameras ``[V, T]``) after pruning."""
    from lyra.student.heads import raw_to_gaussians

    batched = cams.reshape(1, *cams.shape)
    flags = model.scale_saturation(raw[None], batched)[0]
    keep = raw_to_gaussians(raw).kept_indices(1.0 - prune_ratio)
    unit = model.cell_footprint(raw[None], batched)[0]
    smax = raw[:, 4:7].amax(dim=-1)
    z = input_camera.project(raw[keep, :3])[1]
    cells = _pct((smax / unit)[keep])
    depth = _pct(z)
    return {"at_cap": round(float(flags[keep].float().mean()), 4),
            "over_0.3": round(float((smax[keep] >= 0.3 * (1 - 1e-3)).float().mean()), 4),
            "cells_p05": cells[0], "cells_p50": cells[1], "cells_p95": cells[2],
            "scale_p50": _pct(smax[keep], (0.5,))[0],
            "depth_p05": depth[0], "depth_p50": depth[1], "depth_p95": depth[2]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=35)
    ap.add_argument("--students", nargs="+", required=True, metavar="NAME=DIR")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from lyra.geometry import Cameras
    from lyra.pipeline import ScenePipeline
    from lyra.student import LatentDecoder
    from lyra.student.inference import PRUNE_RATIO, decode, plucker_of
    from lyra.world import load_example, split_seeds

    students = dict(s.split("=", 1) for s in args.students)
    pipe = ScenePipeline.from_preset("tiny", depth="tiny", device="cpu")
    models = {name: LatentDecoder.from_pretrained(path).eval() for name, path in students.items()}
    seeds = split_seeds("test")[: args.worlds]
    rows: list[dict] = []
    for seed in seeds:
        t0 = time.perf_counter()
        ex = load_example(int(seed), "tiny", "cpu")
        with torch.no_grad():
            out = pipe.teacher(ex.image, depth=None, camera=None, trajectories=ex.cameras, names=None, seed=0,
                               steps=args.steps, num_frames=None, progress=False)
            cams = Cameras(out.cameras.K.float(), out.cameras.c2w.float(), out.cameras.width, out.cameras.height)
            plucker = plucker_of(cams, pipe.encoder)
            true_depth = _pct(ex.depth.float().flatten())
            row = {"seed": int(seed), "input_depth_p05": true_depth[0], "input_depth_p50": true_depth[1],
                   "input_depth_p95": true_depth[2]}
            for name, model in models.items():
                raw = decode(model, out.raw_latents, cams, plucker)
                row[name] = describe(model, raw, cams, out.input_camera, PRUNE_RATIO)
        rows.append(row)
        print(f"world {seed}: " + "; ".join(f"{n} at cap {row[n]['at_cap']:.3f}, >0.3 {row[n]['over_0.3']:.3f}, "
                                          f"cells p50 {row[n]['cells_p50']:.2f}, depth p50 {row[n]['depth_p50']:.2f}"
                                          for n in models)
              + f" (input depth p50 {row['input_depth_p50']:.2f}; {time.perf_counter() - t0:.0f} s)", flush=True)
    mean = {n: {k: round(statistics.mean(r[n][k] for r in rows), 4) for k in rows[0][n]} for n in models}
    result = {"command": " ".join(sys.argv), "worlds": len(rows), "steps": args.steps, "students": students,
              "mean": mean, "rows": rows}
    for n, m in mean.items():
        print(f"{n:>10}: at cap {100 * m['at_cap']:.1f} %, over 0.3 {100 * m['over_0.3']:.1f} %, cells p05/p50/p95 "
              f"{m['cells_p05']:.2f}/{m['cells_p50']:.2f}/{m['cells_p95']:.2f}, depth p50 {m['depth_p50']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
