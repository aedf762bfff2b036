"""``lyra info FILE``: what a Gaussian splat file holds."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from lyra.gaussians.io import load_gaussians


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="show what a splat file holds (count, bounds, SH degree, opacity histogram)",
        description="Print a summary of a Gaussian splat file (.ply, .splat, .spz): number of Gaussians, "
        "bounds of their centres, spherical-harmonic degree, scale statistics and an opacity histogram.",
    )
    p.add_argument("file", help="a .ply (INRIA 3DGS layout), .splat or .spz file, or a 4D scene folder")
    p.add_argument("--bins", type=int, default=10, help="opacity histogram bins (default 10)")
    p.set_defaults(func=run)


def _bar(fraction: float, width: int = 40) -> str:
    n = fraction * width
    return "#" * int(n) + ("+" if n - int(n) >= 0.5 else "")


def summarize(path: str | Path, bins: int = 10) -> str:
    """The text ``lyra info`` prints for ``path``."""
    p = Path(path)
    g = load_gaussians(p)
    n = len(g)
    lines = [
        f"file        {p}  ({p.stat().st_size / 1e6:.2f} MB, {p.suffix.lstrip('.').upper()})",
        f"gaussians   {n:,}",
        f"sh degree   {g.sh_degree}",
    ]
    if n == 0:
        return "\n".join(lines)
    lo, hi = g.bounds()
    q = torch.quantile(g.means[torch.randperm(n, generator=torch.Generator().manual_seed(0))[:100_000]],
                       torch.tensor([0.01, 0.5, 0.99]), dim=0)
    fmt = "({:.3f}, {:.3f}, {:.3f})".format
    lines += [
        f"bounds min  {fmt(*lo.tolist())}",
        f"bounds max  {fmt(*hi.tolist())}",
        f"1%..99%     {fmt(*q[0].tolist())} .. {fmt(*q[2].tolist())}",
        f"median      {fmt(*q[1].tolist())}",
    ]
    s = g.scales.max(dim=1).values
    lines.append(f"scale (max axis)  min {s.min():.4g}  median {s.median():.4g}  max {s.max():.4g}")
    c = g.colors.mean(0)
    lines.append(f"mean colour       ({c[0]:.3f}, {c[1]:.3f}, {c[2]:.3f})")
    hist = torch.histc(g.opacities.float(), bins=bins, min=0.0, max=1.0)
    lines.append(f"opacity     mean {g.opacities.mean():.3f}")
    for k in range(bins):
        frac = float(hist[k]) / n
        lines.append(f"  [{k / bins:.1f}, {(k + 1) / bins:.1f}{']' if k == bins - 1 else ')'} {int(hist[k]):>10,}  "
                     f"{_bar(frac)}")
    return "\n".join(lines)


def summarize_dynamic(path: str | Path) -> str:
    """The text ``lyra info`` prints for a 4D scene folder (read lazily: only its index and file headers)."""
    import json

    from lyra.scene import INDEX_NAME, DynamicScene

    scene = DynamicScene.load(path, lazy=True)  # validated; the counts below come from the same index
    counts = json.loads((Path(path) / INDEX_NAME).read_text()).get("gaussians")
    lines = [f"folder      {path}  (4D scene)", f"times       {len(scene)}  ({float(scene.times[0]):.3f} .. "
             f"{float(scene.times[-1]):.3f})"]
    if isinstance(counts, list) and counts:
        lines.append(f"gaussians   {min(counts):,} .. {max(counts):,} per time")
    if scene.cameras is not None:
        lines.append(f"cameras     {len(scene.names)} trajectories x {scene.cameras.shape[1]} frames")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import sys

    from lyra.errors import ConfigError
    from lyra.fileio import recover_replaced_dir

    if args.bins < 1 or args.bins > 1000:
        raise ConfigError(f"--bins must lie in 1..1000, got {args.bins}")
    p = Path(args.file)
    if recover_replaced_dir(p):  # a crash fell between the two renames of a scene replacement
        print(f"note: restored {p} from .{p.name}.old (an interrupted replacement)", file=sys.stderr)
    if p.is_dir():
        print(summarize_dynamic(p))
        return 0
    print(summarize(p, args.bins))
    return 0
