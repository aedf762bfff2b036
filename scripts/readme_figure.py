"""Make the README's picture: the input image, then renders of the Gaussians ``lyra generate`` made from it.

    python scripts/readme_figure.py [--image examples/room.png] [--out docs/generate_example.png]

Runs :func:`lyra.pipeline.generate` (shipped tiny models, seed 0) and renders the pruned Gaussians at the last
camera of three trajectories (left, up, zoom_out), labelled, in one row.
"""

from __future__ import annotations

import argparse
import sys

import torch


def main(argv: list[str] | None = None) -> int:
    from lyra.eval.report import contact_sheet
    from lyra.inputs import fit_to_size, load_image
    from lyra.pipeline import generate
    from lyra.render import render

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", default="examples/room.png")
    p.add_argument("--out", default="docs/generate_example.png")
    p.add_argument("--trajectories", default="left,up,zoom_out")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    scene = generate(args.image, seed=args.seed, progress=False)
    H, W = scene.metadata["size"]
    image, _ = fit_to_size(load_image(args.image), H, W)
    cells, labels = [image], ["input"]
    for name in args.trajectories.split(","):
        v = list(scene.names).index(name)
        with torch.no_grad():
            out = render(scene.gaussians, scene.cameras[v, -1:])  # white background
        cells.append(out.rgb[0].permute(2, 0, 1))  # [3, H, W]
        labels.append(f"{name}, last frame")
    contact_sheet([("", cells)], tuple(labels)).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
