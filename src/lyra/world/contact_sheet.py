"""A contact sheet of random worlds: ``python -m lyra.world.contact_sheet -o docs/worlds.png``.

Each cell shows a world's input image (``tiny`` preset) with its seed, family and centre depth; by
default the 16 validation seeds 1000..1015 (never the test split's). ``--style photo`` shows the photo-style
worlds (:mod:`lyra.world.photo`, developed by their camera model); ``--style both`` puts each seed's classic and
photo input views side by side (``--columns`` then counts pairs).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from lyra.fileio import atomic_path
from lyra.world.camera_model import develop
from lyra.world.presets import get_preset
from lyra.world.render import render
from lyra.world.sample import sample_world


def contact_sheet(seeds: Sequence[int], columns: int = 4, preset: str = "tiny", dynamic: bool = False,
                  with_depth: bool = True, style: str = "classic") -> Image.Image:
    """A PIL image: one cell per seed (input image, and a depth strip below it when ``with_depth``); with
    ``style="both"`` two cells per seed (classic, photo)."""
    p = get_preset(preset)
    cells = []
    styles = ("classic", "photo") if style == "both" else (style,)
    if style == "both":
        columns *= 2
    for s, st in ((s, st) for s in seeds for st in styles):
        ws = sample_world(s, p, dynamic, style=st)
        r = render(ws.scene, ws.input_camera)
        rgb = r.rgb if ws.camera is None else develop(r.rgb[None], r.depth[None], ws.camera)[0]
        img = (rgb.permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
        cell = Image.fromarray(img)
        if with_depth:
            d = r.depth
            inv = torch.where(torch.isfinite(d), 1.0 / d.clamp_min(1e-3), torch.zeros_like(d))
            inv = (inv / inv.max().clamp_min(1e-6)).numpy()
            small = Image.fromarray((inv * 255).astype(np.uint8)).resize((p.width // 3, p.height // 3))
            cell.paste(small.convert("RGB"), (p.width - small.width - 2, p.height - small.height - 2))
        draw = ImageDraw.Draw(cell)
        label = f"seed {s} {ws.scene.family} c={ws.center_depth:.1f}m{' photo' if st == 'photo' else ''}"
        draw.rectangle((0, 0, 7 * len(label) + 4, 12), fill=(0, 0, 0))
        draw.text((2, 0), label, fill=(255, 255, 255))
        cells.append(cell)
    rows = -(-len(cells) // columns)
    pad = 4
    sheet = Image.new("RGB", (columns * (p.width + pad) + pad, rows * (p.height + pad) + pad), (255, 255, 255))
    for k, cell in enumerate(cells):
        sheet.paste(cell, (pad + (k % columns) * (p.width + pad), pad + (k // columns) * (p.height + pad)))
    return sheet


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", default="docs/worlds.png", help="PNG to write (default docs/worlds.png)")
    ap.add_argument("--first-seed", type=int, default=1000, help="first seed (default 1000: validation split)")
    ap.add_argument("-n", type=int, default=16, help="number of worlds (default 16)")
    ap.add_argument("--columns", type=int, default=4)
    ap.add_argument("--dynamic", action="store_true")
    ap.add_argument("--style", default="classic", choices=("classic", "photo", "both"))
    ap.add_argument("--no-depth", action="store_true", help="no inverse-depth inset")
    args = ap.parse_args(argv)
    sheet = contact_sheet(range(args.first_seed, args.first_seed + args.n), args.columns, dynamic=args.dynamic,
                          with_depth=not args.no_depth, style=args.style)
    with atomic_path(args.output) as tmp:
        sheet.save(tmp, format="PNG")
    print(f"wrote {args.output} ({sheet.width}x{sheet.height})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
