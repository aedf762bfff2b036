"""Make the README's picture: a held-out test world's input image, the scene ``lyra`` makes of it, and the truth.

    python scripts/readme_figure.py [--world 3] [--trajectory left] [--out docs/generate_example.png]

The world's input image (test world 3 is ``examples/room.png``) goes through :class:`lyra.pipeline.ScenePipeline`
with the shipped tiny models (the teacher's own step count unless ``--steps``: 4 for the shipped few-step teacher;
seed 0, estimated depth: what ``lyra generate`` does), the teacher following
the world's own six trajectories so that every frame has a ground truth. The delivered scene (input-view Gaussians
in front of the generated ones) is rendered on white at the input camera, at the last near frame and at the last
frame of ``--trajectory`` (the frame groups of ``lyra eval scene``). Two rows at full size: ours, then the ground
truth at the same cameras; the first column is the input image. No crop, no choice of frame beyond these rules.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    import torch

    from lyra.eval.baselines import render_views
    from lyra.eval.groups import frame_groups
    from lyra.eval.metrics import psnr
    from lyra.eval.report import contact_sheet
    from lyra.geometry.trajectories import TRAJECTORY_NAMES
    from lyra.pipeline import ScenePipeline
    from lyra.world import load_example, split_seeds

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--world", type=int, default=3, help="index into the held-out test worlds (3: examples/room.png)")
    p.add_argument("--trajectory", default="left", choices=TRAJECTORY_NAMES)
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the teacher's, as lyra generate)")
    p.add_argument("--out", default="docs/generate_example.png")
    args = p.parse_args(argv)

    seed = list(split_seeds("test"))[args.world]
    ex = load_example(seed, "tiny", "cpu")
    H, W = ex.image.shape[-2:]
    pipe = ScenePipeline.from_preset("tiny", device="cpu")
    scene = pipe(ex.image, seed=0, steps=args.steps, size=(H, W), trajectory=ex.cameras, progress=False)
    v = TRAJECTORY_NAMES.index(args.trajectory)
    T = ex.cameras.shape[1]
    groups = frame_groups(T)
    frames = [0, groups["near"][-1], T - 1]
    with torch.no_grad():
        ours = render_views(scene.gaussians, ex.cameras[v:v + 1, frames], backend="torch").rgb[0]
    truth = ex.videos[v, frames].float()
    ours_row = [ex.image.float(), *ours]
    truth_row = [ex.image.float(), *truth]
    labels = ("input", "input view", f"near (frame {frames[1]})", f"far (frame {frames[2]}, {args.trajectory})")
    contact_sheet([("ours", ours_row), ("ground truth", truth_row)], labels).save(args.out)
    scores = ", ".join(f"{lab.split(' ')[0]} {float(psnr(o, t)):.2f} dB" for lab, o, t in zip(labels[1:], ours, truth,
                                                                                            strict=True))
    print(f"wrote {args.out}: test world {args.world} (seed {seed}, {ex.family}), {len(scene.gaussians):,} Gaussians; "
          f"PSNR against the truth: {scores}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
