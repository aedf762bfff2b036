"""Tensor operations per world example, by rendering stage: a CPU-side proxy for CUDA kernel launches.

    python benchmarks/world_ops_cpu.py [--preset tiny] [--seeds 1000000 1000001 1000002 1000003] [--json out.json]

Renders the examples of ``--seeds`` in one batched call on the CPU with the CUDA settings of the renderer
(pixels per chunk and per anti-aliasing pass, ray-candidate pairs per intersection call, the room walk of
CUDA) and counts the ATen
operations dispatched (views excluded) inside each stage: the caster (primary and anti-aliasing rays, with the
planes and room union apart, and the shadow maps), culling, surface attributes, textures, shadow lookups,
lighting and the sky. On CUDA nearly every such operation is one kernel launch, and the launches, not the
arithmetic, bounded the GPU renderer before issue 22 (``benchmarks/gpu/world_gpu.py --profile`` counts the real
launches). Runs on the sources it is given, so the same command measures an older checkout
(``PYTHONPATH=OLD/src``) for comparison.
"""

from __future__ import annotations

import argparse
import collections
import functools
import importlib
import json
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

#: ATen operations that only make views (no kernel on CUDA).
_VIEWS = {"view", "_unsafe_view", "expand", "select", "slice", "t", "permute", "reshape", "unsqueeze", "squeeze",
          "as_strided", "alias", "detach", "transpose", "split", "unbind", "lift_fresh"}


class _Count(TorchDispatchMode):
    """Counts non-view ATen operations per innermost stage label on ``stack``."""

    def __init__(self, stack: list[str]) -> None:
        super().__init__()
        self.stack = stack
        self.n: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__.split(".")[0] not in _VIEWS:
            self.n[self.stack[-1]] += 1
        return func(*args, **(kwargs or {}))


def _tag(mod, name: str, label: str, stack: list[str], **force) -> None:
    """Label every call of ``mod.name`` (if it exists) with ``label``, with keyword arguments ``force``."""
    f = getattr(mod, name, None)
    if f is None:
        return

    @functools.wraps(f)
    def wrapped(*a, **k):
        k.update(force)
        stack.append(label)
        try:
            return f(*a, **k)
        finally:
            stack.pop()

    setattr(mod, name, wrapped)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1_000_000, 1_000_001, 1_000_002, 1_000_003])
    ap.add_argument("--json", default=None, help="also write the counts here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    R = importlib.import_module("lyra.world.render")
    L = importlib.import_module("lyra.world.lighting")
    C = importlib.import_module("lyra.world.raycast")
    from lyra.geometry.cameras import Cameras
    from lyra.world.sample import _frames_cameras, sample_world
    from lyra.world.scene import SceneBatch

    stack = ["other"]
    batched = hasattr(C, "CHUNK_CUDA")  # the per-kind caster (issue 22) or the per-slot one before it
    primary_chunk = C.CHUNK_CUDA if batched else 1 << 22  # what render() passed on CUDA
    _tag(R, "trace", "trace: primary + anti-aliasing", stack, chunk_rays=primary_chunk)
    if not batched:  # the per-slot renderer took its anti-aliasing pass size from the device: CUDA's
        chunk = R._render_chunk
        R._render_chunk = lambda *a: chunk(*a[:-1], 1 << 22)
    _tag(L, "trace", "trace: shadow maps", stack, **({"chunk_rays": C.CHUNK_CUDA} if batched else {}))
    _tag(C, "_globals", "trace: planes + room union", stack)
    if hasattr(C, "_rooms"):
        rooms = C._rooms
        C._rooms = lambda *a: rooms(*a[:6], batched=True)  # the room walk of CUDA
    _tag(R, "cull", "cull", stack)
    _tag(R, "surface", "surface", stack)
    _tag(L, "albedo", "textures", stack)
    _tag(L, "_lookup", "shadow lookups", stack)
    _tag(L, "_illuminate", "lighting", stack)
    _tag(R, "sky_color", "sky", stack)
    _tag(R, "shadow_maps", "shadow maps (other)", stack)
    _tag(R, "_shade_rays", "shading (other)", stack)

    samples = [sample_world(s, args.preset) for s in args.seeds]
    cams, times, idx = [], [], []
    for i, ws in enumerate(samples):
        c, t = _frames_cameras(ws)
        cams.append(c)
        times.append(t)
        idx.append(torch.full((len(c),), i, dtype=torch.long))
    batch = SceneBatch.pack([ws.scene for ws in samples], "cpu")
    cam = Cameras.cat(cams)

    def run():
        return R.render(batch, cam, torch.cat(times), torch.cat(idx), max_pixels=1 << 24)

    t0 = time.perf_counter()
    with _Count(stack) as count:
        run()
    wall = time.perf_counter() - t0
    n = len(samples)
    total = sum(count.n.values())
    print(f"{'per-kind caster' if batched else 'per-slot caster'}; {n} {args.preset} examples ({len(cam)} frames) "
          f"in one call, CUDA chunk sizes, on the CPU ({wall:.1f} s with counting)")
    for k, v in sorted(count.n.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<32} {v:>8,}  ({v / n:,.0f} per example)")
    print(f"  {'total':<32} {total:>8,}  ({total / n:,.0f} per example)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"caster": "per-kind" if batched else "per-slot", "preset": args.preset, "seeds": args.seeds,
                       "frames": len(cam), "ops": dict(count.n), "total": total, "per_example": total / n}, f,
                      indent=2)


if __name__ == "__main__":
    main()
