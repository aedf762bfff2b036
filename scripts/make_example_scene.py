"""Build the bundled example scene ``examples/room.spz`` from a procedural world's ground truth.

The world's input view and the last frame of each of its six GEN3C trajectories are turned into
pixel-aligned Gaussians (exact depth, every 2nd pixel) and expressed in the input camera's frame, as
``lyra generate`` writes its scenes: the OpenCV camera at the origin looking down +z is the input view.

    python scripts/make_example_scene.py --seed 1007 -o examples/room.spz
"""

from __future__ import annotations

import argparse

import torch

from lyra.gaussians.from_depth import gaussians_from_depth
from lyra.gaussians.io import save_gaussians
from lyra.world import make_example


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1007, help="world seed (default 1007, a validation-split world)")
    ap.add_argument("--stride", type=int, default=2)
    ap.add_argument("-o", "--output", default="examples/room.spz")
    args = ap.parse_args()
    ex = make_example(args.seed, preset="tiny")
    last = ex.cameras.shape[1] - 1
    images = torch.cat([ex.image[None], ex.videos[:, last]])
    depths = torch.cat([ex.depth[None], ex.depths[:, last]])
    cams = ex.cameras[:, last]
    from lyra.geometry.cameras import Cameras

    views = Cameras.cat([ex.cameras[0, 0].reshape(1), cams])
    g = gaussians_from_depth(images, depths, views, stride=args.stride)
    g = g.transform(ex.cameras[0, 0].w2c)  # input view = the origin camera
    save_gaussians(g, args.output)
    print(f"wrote {args.output}: {len(g):,} Gaussians from world {args.seed} ({ex.family}), "
          f"centre depth {ex.center_depth:.2f}")


if __name__ == "__main__":
    main()
