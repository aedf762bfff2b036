"""Does the 4D scene of a video show the video's motion? Dynamic test worlds through ``ScenePipeline.video``.

For each of the first ``--worlds`` dynamic test worlds, the static input camera's video goes through the tiny
video models with output times 0 and 1, once with the per-time input-view Gaussians (the tiny preset's default)
and once without (the dynamic student's Gaussians alone). Each time's scene is rendered at the input camera and
compared with the first and last input frames; ``change`` is the mean absolute difference between the renders at
t = 0 and t = 1 (the input frames' own change beside it).

    python benchmarks/dynamic_input_view_cpu.py --worlds 3 --out docs/dynamic_eval

writes ``input_view_t0_t1.json`` and ``input_view_t0_t1.png`` (one row per world: frame 0 | t = 0 without | with |
last frame | t = 1 without | with).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lyra.eval.baselines import render_views
from lyra.eval.metrics import psnr
from lyra.pipeline import ScenePipeline
from lyra.pipeline_inputs import static_cameras
from lyra.world import load_example, split_seeds


def _u8(t: torch.Tensor) -> np.ndarray:
    return (t.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=35)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    pipe = ScenePipeline.from_preset("tiny", dynamic=True, device="cpu")
    rows, sheet = [], []
    for s in list(split_seeds("test"))[: args.worlds]:
        t0 = time.perf_counter()
        ex = load_example(s, "tiny", "cpu", dynamic=True)
        video, times = ex.input_video.float(), ex.times.float()
        T, _, H, W = video.shape
        cam = static_cameras(T, H, W)[:1].reshape(1, 1)
        row: dict = {"seed": s, "family": ex.family, "frames_change": float((video[0] - video[-1]).abs().mean())}
        renders = {}
        for on in (False, True):
            scene = pipe.video(video, times, output_times=[0.0, 1.0], steps=args.steps, progress=False,
                               input_view=on)
            a, b = (render_views(g, cam, backend="torch").rgb[0, 0] for g in scene.gaussians)
            renders[on] = (a, b)
            row["with_input_view" if on else "student_alone"] = {
                "change": float((a - b).abs().mean()), "psnr_t0": float(psnr(a, video[0])),
                "psnr_t1": float(psnr(b, video[-1])), "gaussians": [len(g) for g in scene.gaussians]}
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        print(json.dumps(row), flush=True)
        sheet.append(np.concatenate([_u8(video[0]), _u8(renders[False][0]), _u8(renders[True][0]),
                                     _u8(video[-1]), _u8(renders[False][1]), _u8(renders[True][1])], 1))
    (args.out / "input_view_t0_t1.json").write_text(json.dumps(
        {"command": f"python benchmarks/dynamic_input_view_cpu.py --worlds {args.worlds} --steps {args.steps}",
         "worlds": rows}, indent=2) + "\n")
    Image.fromarray(np.concatenate(sheet, 0)).save(args.out / "input_view_t0_t1.png")


if __name__ == "__main__":
    main()
