"""Frame groups and the metric table every evaluator reports (scene, teacher, student fidelity).

Every trajectory starts at the input camera (frame 0). Frames are reported in three groups:

* ``input`` — frame 0: the delivered scene (or the teacher's frame) at the input camera against the input image;
* ``near`` — the first quarter of each trajectory after frame 0: frames ``1 … ⌈(T−1)/4⌉``;
* ``far`` — the rest, frames ``⌈(T−1)/4⌉+1 … T−1``.

Metrics per group and system (:mod:`lyra.eval.metrics`, one implementation each):

* ``psnr`` — mean over frames of the per-frame PSNR (infinite values of identical frames left out);
* ``ssim``, ``ms_ssim``, ``gmsd`` (lower is better), ``lpips`` (when a model is given; lower is better) — mean
  over frames;
* ``sharpness`` — the sharpness ratio, a ratio of totals over the group's frames (1.0 = as sharp as the truth);
* ``abs_rel``, ``delta1`` — rendered expected depth against the true depth (systems with geometry), after
  per-frame median scaling when the depth is known only up to scale (``depth_align="median"``);
* ``coverage`` — fraction of pixels with alpha ≥ 0.5 (systems with an alpha);
* with a hole mask (disoccluded pixels, where the warp has no data): ``psnr_visible`` and ``psnr_disoccluded``
  (PSNR of the MSE pooled over the group's pixels outside / inside the holes: per-frame values would be
  dominated by frames with a few such pixels),
  ``ssim_disoccluded`` (mean of the SSIM map at window centres inside holes), ``sharpness_disoccluded`` and
  ``disoccluded_fraction``.

:func:`mean_tables` averages tables of several worlds (mean per world, then over worlds; NaN left out), and
:func:`winners` says which system wins each metric.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

from lyra.eval.baselines import Views

__all__ = ["FRAME_GROUPS", "HIGHER_IS_BETTER", "LOWER_IS_BETTER", "METRICS", "ONE_IS_BEST", "Table", "best_system",
           "frame_groups", "group_metrics", "mean_rows", "mean_tables", "view_metrics", "winners"]

FRAME_GROUPS = ("input", "near", "far")
#: Every metric key a table may hold, in report order.
METRICS = ("psnr", "ssim", "ms_ssim", "gmsd", "lpips", "sharpness", "abs_rel", "delta1", "coverage",
           "psnr_visible", "psnr_disoccluded", "ssim_disoccluded", "sharpness_disoccluded")
HIGHER_IS_BETTER = frozenset({"psnr", "ssim", "ms_ssim", "delta1", "coverage", "psnr_visible", "psnr_disoccluded",
                              "ssim_disoccluded"})
LOWER_IS_BETTER = frozenset({"gmsd", "lpips", "abs_rel"})
#: Metrics where 1.0 is ideal (compared by |log ratio|).
ONE_IS_BEST = frozenset({"sharpness", "sharpness_disoccluded"})

Table = dict[str, dict[str, dict[str, float]]]  # group → system → metric → value


def frame_groups(frames: int) -> dict[str, list[int]]:
    """Frame indices of each group for trajectories of ``frames`` frames (see the module doc); a group may be
    empty for very short trajectories."""
    if frames < 1:
        raise ValueError(f"trajectories need at least one frame, got {frames}")
    n_near = math.ceil((frames - 1) / 4)
    return {"input": [0], "near": list(range(1, 1 + n_near)), "far": list(range(1 + n_near, frames))}


def _mean_finite(v: Tensor) -> float:
    v = v[torch.isfinite(v)]
    return float(v.mean()) if v.numel() else math.nan


@torch.no_grad()
def view_metrics(pred: Views, gt_rgb: Tensor, gt_depth: Tensor | None = None, depth_align: str = "none",
                 lpips: Any = None, holes: Tensor | None = None, chunk: int = 32) -> dict[str, float]:
    """The metrics of frames ``pred`` against ``gt_rgb`` (see the module doc), over all frames given.

    Args:
        pred: frames ``[N, 3, H, W]`` with optional depth / alpha ``[N, H, W]``.
        gt_rgb: ``[N, 3, H, W]`` in [0, 1]; gt_depth: ``[N, H, W]`` z-depth or ``None`` (no depth metrics).
        depth_align: ``"none"`` or ``"median"`` (:func:`lyra.eval.metrics.depth_errors`).
        lpips: a callable ``(pred, gt) → [n]`` distances (e.g. :class:`lyra.distill.losses.LPIPSVGG`) or ``None``.
        holes: ``[N, H, W]`` bool disoccluded pixels, or ``None``.
    """
    from lyra.eval.metrics import (
        coverage,
        depth_errors,
        gmsd,
        ms_ssim,
        psnr,
        psnr_pooled,
        sharpness_ratio,
        ssim_map,
    )

    p = pred.rgb.float().clamp(0, 1).to(gt_rgb.device)
    g = gt_rgb.float()
    if p.shape != g.shape:
        raise ValueError(f"frames {tuple(p.shape)} do not match the ground truth {tuple(g.shape)}")
    out: dict[str, float] = {}
    ps, ss, ms, gm, lp, smaps = [], [], [], [], [], []
    for i in range(0, p.shape[0], chunk):
        a, b = p[i:i + chunk], g[i:i + chunk]
        ps.append(psnr(a, b))
        m = ssim_map(a, b).mean(dim=-3)  # [n, H-10, W-10]
        smaps.append(m)
        ss.append(m.mean(dim=(-2, -1)))
        ms.append(ms_ssim(a, b))
        gm.append(gmsd(a, b))
        if lpips is not None:
            lp.append(lpips(a, b).float().reshape(-1))
    out["psnr"] = _mean_finite(torch.cat(ps))
    out["ssim"] = float(torch.cat(ss).mean())
    out["ms_ssim"] = float(torch.cat(ms).mean())
    out["gmsd"] = float(torch.cat(gm).mean())
    if lp:
        out["lpips"] = float(torch.cat(lp).mean())
    out["sharpness"] = sharpness_ratio(p, g)
    if gt_depth is not None and pred.depth is not None:
        d = depth_errors(pred.depth.to(gt_depth.device), gt_depth, align=depth_align)
        out["abs_rel"], out["delta1"] = d["abs_rel"], d["delta1"]
    if pred.alpha is not None:
        out["coverage"] = coverage(pred.alpha)
    if holes is not None:
        h = holes.bool().to(g.device)
        out["disoccluded_fraction"] = float(h.float().mean())
        out["psnr_visible"] = psnr_pooled(p, g, ~h)
        out["psnr_disoccluded"] = psnr_pooled(p, g, h)
        out["ssim_disoccluded"] = out["sharpness_disoccluded"] = math.nan
        if bool(h.any()):
            m = torch.cat(smaps)
            r = (h.shape[-2] - m.shape[-2]) // 2
            centre = h[..., r:r + m.shape[-2], r:r + m.shape[-1]]
            out["ssim_disoccluded"] = float(m[centre].mean()) if bool(centre.any()) else math.nan
            out["sharpness_disoccluded"] = sharpness_ratio(p, g, mask=h)
    return out


def _take(t: Tensor | None, idx: list[int]) -> Tensor | None:
    """Frames ``idx`` of every trajectory of ``[V, T, ...]`` → ``[V·len(idx), ...]``."""
    return None if t is None else t[:, idx].reshape(-1, *t.shape[2:])


def group_metrics(systems: Mapping[str, Views], gt_rgb: Tensor, gt_depth: Tensor | None = None,
                  depth_align: str = "none", lpips: Any = None, holes: Tensor | None = None,
                  groups: Iterable[str] = FRAME_GROUPS, input_image: Tensor | None = None,
                  frame_numbers: list[int] | None = None, total_frames: int | None = None) -> Table:
    """One world's table: :func:`view_metrics` of each system in each frame group.

    Args:
        systems: name → :class:`Views` of shape ``[V, T]`` (trajectories × frames).
        gt_rgb: ``[V, T, 3, H, W]`` ground truth; gt_depth: ``[V, T, H, W]`` or ``None``.
        holes: ``[V, T, H, W]`` disoccluded pixels (no warp data), or ``None``.
        input_image: ``[3, H, W]``: the reference of the ``input`` group (default: ``gt_rgb[:, 0]``, which is the
            input image rendered at the input camera for procedural worlds).
        groups: which groups to report (empty groups are skipped).
        frame_numbers, total_frames: when the ``T`` axis holds a subset of each trajectory's frames (e.g. every
            k-th), their frame numbers and the trajectory length: the groups are those of the full trajectory.

    Returns:
        ``table[group][system][metric]``.
    """
    V, T = gt_rgb.shape[:2]
    numbers = list(range(T)) if frame_numbers is None else list(frame_numbers)
    if len(numbers) != T:
        raise ValueError(f"{len(numbers)} frame numbers for {T} frames")
    full = frame_groups(total_frames if total_frames is not None else T)
    idx = {g: [j for j, f in enumerate(numbers) if f in set(full[g])] for g in full}
    table: Table = {}
    for group in groups:
        frames = idx[group]
        if not frames:
            continue
        g_rgb = _take(gt_rgb, frames)
        if group == "input" and input_image is not None:
            g_rgb = input_image.to(gt_rgb.device, torch.float32)[None].expand(V, *input_image.shape)
        g_depth = _take(gt_depth, frames)
        h = _take(holes, frames)
        table[group] = {}
        for name, v in systems.items():
            if v.rgb.shape[:2] != (V, T):
                raise ValueError(f"{name}: frames {tuple(v.rgb.shape)} do not match [V, T] = {(V, T)}")
            pv = Views(_take(v.rgb, frames), _take(v.depth, frames), _take(v.alpha, frames))
            table[group][name] = view_metrics(pv, g_rgb, g_depth, depth_align, lpips,
                                              None if group == "input" else h)
    return table


def mean_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Key by key mean of several rows of numbers (keys in first-seen order; NaN, non-numeric and missing values
    left out; NaN where no value is left)."""
    rows = list(rows)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    out: dict[str, float] = {}
    for k in keys:
        vals = [float(r[k]) for r in rows if isinstance(r.get(k), (int, float)) and math.isfinite(r[k])]
        out[k] = sum(vals) / len(vals) if vals else math.nan
    return out


def mean_tables(tables: list[Table]) -> Table:
    """Mean of several worlds' tables, key by key (:func:`mean_rows`: NaN and missing values left out)."""
    cells = dict.fromkeys((g, n) for t in tables for g, systems in t.items() for n in systems)
    out: Table = {}
    for g, n in cells:
        out.setdefault(g, {})[n] = mean_rows(t[g][n] for t in tables if n in t.get(g, {}))
    return out


def best_system(values: Mapping[str, float], metric: str) -> str | None:
    """The name with the best ``metric`` among ``values`` (name → value; ties: the first), or ``None`` when fewer
    than two finite values compete or the metric has no direction."""
    vals = {n: float(v) for n, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    if len(vals) < 2:
        return None
    if metric in ONE_IS_BEST:
        return min(vals, key=lambda n: abs(math.log(max(vals[n], 1e-12))))
    if metric in LOWER_IS_BETTER:
        return min(vals, key=vals.__getitem__)
    if metric in HIGHER_IS_BETTER:
        return max(vals, key=vals.__getitem__)
    return None


def winners(table: Table) -> dict[str, dict[str, str]]:
    """``winners[group][metric]`` = the best system's name (:func:`best_system`); metrics that fewer than two
    systems report are left out."""
    out: dict[str, dict[str, str]] = {}
    for group, systems in table.items():
        for metric in METRICS:
            best = best_system({n: m[metric] for n, m in systems.items() if metric in m}, metric)
            if best is not None:
                out.setdefault(group, {})[metric] = best
    return out
