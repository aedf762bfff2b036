"""Teachers side by side on the same held-out dynamic test worlds (issue 18 item 4; CPU or GPU).

    python docs/bench/dynamic_teacher/compare_teachers.py NAME=DIR [NAME=DIR ...] [--worlds 8] [--steps 35]
        [--json OUT]

Each teacher folder is scored by the trainer's own held-out test (``lyra.train.recipes.teacher.evaluate_teacher``:
the first ``--worlds`` dynamic test worlds, exact depth, the input camera's video through the dynamic 3D cache,
``--steps`` Euler steps, PSNR over frames 1..T-1 of all six trajectories, overall and on the disoccluded pixels)
with the same seeds, so the rows compare. Noise is drawn on the device the teacher runs on: a CPU row and a GPU row
of the same teacher differ by the draw.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from lyra.teacher.denoiser import TeacherDenoiser
from lyra.tokenizer import Tokenizer
from lyra.train.recipes.teacher import evaluate_teacher
from lyra.world import split_seeds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("teachers", nargs="+", metavar="NAME=DIR", help="a name for the row and a teacher folder")
    p.add_argument("--worlds", type=int, default=8, help="the first N dynamic test worlds (default 8)")
    p.add_argument("--steps", type=int, default=35, help="Euler steps (default 35)")
    p.add_argument("--tokenizer", default="tiny", help="tokenizer preset (default tiny)")
    p.add_argument("--json", default=None, help="also write the rows here")
    args = p.parse_args()
    rows = [t.split("=", 1) for t in args.teachers]
    if any(len(r) != 2 for r in rows):
        p.error("each teacher is NAME=DIR")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    seeds = [int(s) for s in split_seeds("test")[:args.worlds]]
    tokenizer = Tokenizer.from_preset(args.tokenizer).to(device).eval().requires_grad_(False)
    out = {}
    for name, path in rows:
        t0 = time.time()
        model = TeacherDenoiser.from_pretrained(path, device=device, dtype=torch.float32)
        with torch.no_grad():
            res = evaluate_teacher(model, tokenizer, seeds, "tiny", args.steps, 0, True)
        out[name] = {"path": path, "device": device, **res, "seconds": round(time.time() - t0, 1)}
        print(f"{name}: PSNR {res['psnr_teacher']:.2f} dB, disoccluded {res['psnr_teacher_disoccluded']:.2f} dB "
              f"(warp-only {res['psnr_warp']:.2f} / {res['psnr_warp_disoccluded']:.2f}; {len(seeds)} worlds, "
              f"{args.steps} steps, {device})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
