"""The real-image benchmark (``lyra eval real``): photographs with geometric ground truth, not procedural worlds.

Data: ``../shared/data/real`` (or ``--data DIR`` / ``$LYRA_REAL_DATA``), read by :mod:`lyra.eval.real_data`.
Every photo goes through :class:`lyra.pipeline.ScenePipeline` as a user's photo would: the working size follows
its aspect (:func:`lyra.geometry.intrinsics.working_size_for`), the input camera has the dataset's intrinsics
where known (Middlebury: none, so the default 50° vertical field of view), the teacher makes its six GEN3C
trajectories, and the delivered (pruned) Gaussians are rendered. Three parts:

* **depth** — the pipeline's depth estimate of the fitted photo (the map the teacher warps with) against the
  ground truth resized to the working size (nearest neighbour; unknown pixels left out), after median scaling
  (:func:`lyra.eval.metrics.depth_errors` ``align="median"``): AbsRel and δ<1.25. RGB-D pairs: metric depth.
  Middlebury: the GT disparity ``d`` gives depth up to the unknown factor focal × baseline, ``z ∝ 1/d`` (no
  disparity offset in these pairs); median scaling removes that factor, so the depth is compared with ``1/d``.
  Beside it: a *constant* depth (what median scaling makes of any constant map), and the delivered scene's
  rendered depth at the input camera.
* **input view** — the delivered scene rendered at the input camera against the fitted photo, on every photo
  (RGB-D, the left image of each stereo pair, fern's input view, the ScanNet frames): PSNR, SSIM, MS-SSIM, GMSD,
  sharpness ratio, coverage (:func:`lyra.eval.groups.view_metrics`), beside the filled warp.
* **novel views** — rendered at real cameras, beside the *filled warp* with the same depth (warp-only: one
  Gaussian per pixel of the input at the pipeline's depth, holes inpainted by OpenCV Telea,
  :func:`lyra.eval.baselines.filled_warp`); disoccluded-pixel metrics where warp-only has no data:

  - **stereo** (Middlebury): left in, right out. The right camera is the left one moved along +x by a baseline
    ``b`` in the scene's units, fitted as ``b = median(d_px · z / f_x)`` over pixels with GT disparity (``d_px`` at
    the working size, ``z`` the pipeline's depth, ``f_x`` the input camera's focal), i.e. the baseline that makes
    the scene's median disparity the true one.
  - **LLFF fern**: the view whose centre is nearest the mean centre is the input; three others are rendered:
    the nearest, the median and the farthest of the rest by centre distance. Poses are aligned by a similarity:
    rotation and translation by expressing every LLFF/COLMAP pose relative to the input view
    (``c2w_in⁻¹ · c2w_k``, so the input camera is the identity, as in the scene), and the scale ``s`` as the median
    over COLMAP's sparse points (``points3D.bin``) seen in the input view of (the pipeline's depth at the point's
    pixel) / (the point's COLMAP depth); translations are multiplied by ``s``.

The report is ``real_eval.md`` + ``real_eval.json`` + ``real_eval.png`` (rows at full size: input | ours | filled
warp | real).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lyra.errors import ConfigError
from lyra.eval.baselines import HOLE_ALPHA, Views, filled_warp, render_views, warp_only_gaussians
from lyra.eval.groups import best_system, mean_tables, view_metrics
from lyra.eval.real_data import FernSet, RealImage, StereoPair, load_fern, load_rgbd, load_scannet, load_stereo
from lyra.geometry.cameras import Cameras

__all__ = ["KINDS", "SHEET_COLUMNS", "SYSTEMS", "depth_only", "evaluate_real", "fern_alignment", "markdown_report",
           "stereo_right_camera"]

#: The systems of the view tables (JSON key → name in the report).
SYSTEMS = {"ours": "ours (delivered scene)", "filled_warp": "filled warp"}
#: The depth table's systems.
DEPTH_SYSTEMS = {"depth_net": "depth estimate (what the teacher warps with)",
                 "scene": "delivered scene (rendered depth, input view)", "constant": "constant depth"}
SHEET_COLUMNS = ("input", "ours", "filled warp", "real")
#: Kinds of photo; ``--max-images N`` takes at most N of each.
KINDS = ("rgbd", "stereo", "fern", "scannet")
VIEW_METRICS = ("psnr", "ssim", "ms_ssim", "gmsd", "sharpness", "coverage", "psnr_disoccluded",
                "ssim_disoccluded", "sharpness_disoccluded")

Log = Callable[[str], None]


# ------------------------------------------------------------------------------------------------ geometry
def _fit(image: Tensor, size: tuple[int, int]) -> Tensor:
    from lyra.inputs import fit_to_size

    return fit_to_size(image, *size)[0]


def _fit_depth(depth: Tensor, size: tuple[int, int]) -> Tensor:
    from lyra.inputs import fit_depth_to_size

    return fit_depth_to_size(depth, *size)


def _input_camera(item: RealImage) -> Cameras | None:
    if item.K is None:
        return None
    return Cameras(item.K, torch.eye(4), int(item.image.shape[-1]), int(item.image.shape[-2]))


def stereo_right_camera(left: Cameras, disparity_px: Tensor, depth: Tensor) -> tuple[Cameras, float]:
    """The right camera of a rectified pair: ``left`` (batch ``[]``, OpenCV) moved by ``b`` along its +x axis, with
    ``b = median(d · z / f_x)`` over pixels with a GT disparity ``d > 0`` (``disparity_px`` ``[H, W]`` at the camera's
    size) and a finite positive ``depth`` ``[H, W]``. Returns the camera and ``b``."""
    ok = (disparity_px > 0) & torch.isfinite(depth) & (depth > 0)
    if not bool(ok.any()):
        raise ConfigError("stereo pair: no pixel has both a GT disparity and a depth")
    b = float((disparity_px[ok] * depth[ok] / left.K[0, 0]).median())
    c2w = left.c2w.clone()
    c2w[:3, 3] = c2w[:3, 3] + b * c2w[:3, 0]
    return Cameras(left.K.clone(), c2w, left.width, left.height), b


def fern_alignment(fern: FernSet, size: tuple[int, int], depth: Tensor, input_index: int) -> tuple[Tensor, float, int]:
    """Similarity alignment of fern's poses to a scene made from view ``input_index`` (see the module doc).

    Args:
        size: the working ``(H, W)``; depth: the pipeline's depth ``[H, W]`` of the input view at that size.

    Returns:
        ``c2w`` ``[N, 4, 4]`` of every view in the scene's frame (the input view's is the identity), the scale ``s``
        and the number of sparse points it was fitted on.
    """
    from lyra.inputs import fit_cameras_to_size

    H, W = size
    cam = fit_cameras_to_size(Cameras(fern.K, torch.eye(4), fern.images.shape[-1], fern.images.shape[-2]), H, W)
    w2c_in = torch.linalg.inv(fern.c2w[input_index].double())
    rel = w2c_in @ fern.c2w.double()
    pc = fern.points.double() @ w2c_in[:3, :3].T + w2c_in[:3, 3]  # sparse points in the input camera
    z = pc[:, 2]
    K = cam.K.double()
    u = K[0, 0] * pc[:, 0] / z + K[0, 2]
    v = K[1, 1] * pc[:, 1] / z + K[1, 2]
    inside = (z > 0) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
    ui, vi = u[inside].long().clamp(0, W - 1), v[inside].long().clamp(0, H - 1)
    ours = depth.double()[vi, ui]
    ok = torch.isfinite(ours) & (ours > 0)
    if int(ok.sum()) < 3:
        raise ConfigError("fern: fewer than 3 sparse points fall inside the input view; cannot fit the scale")
    s = float((ours[ok] / z[inside][ok]).median())
    rel = rel.clone()
    rel[:, :3, 3] *= s
    return rel.float(), s, int(ok.sum())


def _fern_views(fern: FernSet) -> tuple[int, list[int]]:
    """Input view (centre nearest the mean centre) and three targets (the nearest, median, farthest of the rest)."""
    c = fern.c2w[:, :3, 3]
    i0 = int((c - c.mean(0)).norm(dim=-1).argmin())
    rest = sorted((j for j in range(len(c)) if j != i0), key=lambda j: float((c[j] - c[i0]).norm()))
    picks = [rest[0], rest[len(rest) // 2], rest[-1]] if len(rest) >= 3 else rest
    return i0, list(dict.fromkeys(picks))


# ------------------------------------------------------------------------------------------------ parts
def _depth_row(pred: Tensor, gt: Tensor, scene_depth: Tensor | None) -> dict[str, dict[str, float]]:
    from lyra.eval.metrics import depth_errors

    row = {"depth_net": depth_errors(pred, gt, align="median"),
           "constant": depth_errors(torch.ones_like(gt), gt, mask=torch.isfinite(pred) & (pred > 0), align="median")}
    if scene_depth is not None:
        row["scene"] = depth_errors(scene_depth, gt, align="median")
    return row


@torch.no_grad()
def _estimate_depth(pipe: Any, fitted: Tensor) -> Tensor:
    est = pipe.teacher.depth_estimator
    return est(fitted[None].to(pipe.device)).depth[0].float().cpu()


def _views(g: Any, cams: Cameras, backend: str) -> Views:
    return render_views(g, cams, backend).cpu()


def _systems(scene: Any, image: Tensor, cams: Cameras, backend: str, dev: torch.device) -> dict[str, Views]:
    """The delivered scene and the filled warp (same depth, the input camera = ``scene.cameras[0, 0]``) at ``cams``
    (batch ``[N]``)."""
    warp_g = warp_only_gaussians(image, scene.depth, scene.cameras[0, 0]).to(dev)
    warp = _views(warp_g, cams, backend)
    return {"ours": _views(scene.gaussians.to(dev), cams, backend), "filled_warp": filled_warp(warp), "warp": warp}


def depth_only(pipe: Any, rgbd: list[RealImage], stereo: list[StereoPair], log: Log | None = None,
               reference_size: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """The depth part alone (no teacher, no student): one row per RGB-D photo and stereo pair."""
    from lyra.geometry.intrinsics import working_size_for

    rows = []
    for item in [*rgbd, *(p.left for p in stereo)]:
        size = working_size_for(*item.image.shape[-2:], reference_size or pipe.working_size)
        pred = _estimate_depth(pipe, _fit(item.image, size))
        d = _depth_row(pred, _fit_depth(item.depth, size), None)
        rows.append({"name": item.name, "source": item.source, "licence": item.licence, "outdoor": item.outdoor,
                     "kind": "stereo" if item.source.startswith("Middlebury") else "rgbd", "size": list(size),
                     "depth": d})
        if log:
            log(f"  {item.name:<22} depth AbsRel {d['depth_net']['abs_rel']:.3f} δ1 {d['depth_net']['delta1']:.3f} "
                f"(constant {d['constant']['abs_rel']:.3f} / {d['constant']['delta1']:.3f})")
    return rows


@torch.no_grad()
def evaluate_real(pipe: Any, data_dir: Path, max_images: int | None = None, steps: int = 35, seed: int = 0,
                  backend: str = "auto", depth_only_run: bool = False, log: Log | None = None,
                  progress: bool = False, reference_size: tuple[int, int] | None = None
                  ) -> tuple[dict[str, Any], list[tuple[str, list[Tensor]]]]:
    """The real-image benchmark on ``data_dir`` (see the module doc).

    Args:
        pipe: a loaded :class:`lyra.pipeline.ScenePipeline`.
        max_images: at most this many photos of each kind (:data:`KINDS`; fern counts its one input view), in the
            data's fixed order; ``None``: all.
        steps, seed: the teacher's sampler steps and seed (the same seed for every photo).
        depth_only_run: only the depth part (seconds instead of minutes).
        reference_size: the pixel count the working sizes follow (default the preset's working size).

    Returns:
        ``(result, sheet_rows)``: ``result`` with ``setting``, ``depth`` (per photo and means by group),
        ``input_view``, ``novel_views``; ``sheet_rows`` for :func:`lyra.eval.report.contact_sheet`.
    """
    from lyra.geometry.intrinsics import working_size_for
    from lyra.inputs import fit_cameras_to_size

    if max_images is not None and max_images < 1:
        raise ConfigError(f"--max-images must be >= 1, got {max_images}")
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    take = (lambda xs: xs[:max_images]) if max_images is not None else (lambda xs: xs)
    ref = tuple(reference_size) if reference_size is not None else tuple(pipe.working_size)
    rgbd, stereo = take(load_rgbd(data_dir)), take(load_stereo(data_dir))
    fern = load_fern(data_dir)
    scannet = take(load_scannet(data_dir))
    t_all = time.perf_counter()
    setting: dict[str, Any] = {
        "data": str(data_dir), "max_images": max_images, "steps": steps, "seed": seed, "backend": backend,
        "working_size": "aspect of each photo at about the preset's pixel count", "preset_size": list(ref),
        "depth_align": "median", "hole_alpha": HOLE_ALPHA, "depth_only": depth_only_run,
        "counts": {"rgbd": len(rgbd), "stereo": len(stereo), "fern": 1 if fern is not None else 0,
                   "scannet": len(scannet)},
    }
    if depth_only_run:
        rows = depth_only(pipe, rgbd, stereo, log, ref)
        setting["seconds"] = time.perf_counter() - t_all
        return {"setting": setting, "depth": _depth_summary(rows), "input_view": None, "novel_views": None}, []

    dev = pipe.device
    depth_rows: list[dict[str, Any]] = []
    input_rows: list[dict[str, Any]] = []
    novel: dict[str, list[dict[str, Any]]] = {"stereo": [], "fern": []}
    sheet: list[tuple[str, list[Tensor]]] = []

    def run(item: RealImage, kind: str) -> tuple[Any, Tensor, tuple[int, int]]:
        t0 = time.perf_counter()
        cam = _input_camera(item)
        scene = pipe(item.image, seed=seed, steps=steps, camera=cam, progress=progress,
                     size=working_size_for(*item.image.shape[-2:], ref),
                     camera_source="dataset intrinsics" if cam is not None else None)
        size = tuple(scene.metadata["size"])
        fitted = scene.image.float().cpu()
        cams = scene.cameras[0, 0].reshape(1)
        systems = _systems(scene, fitted, cams, backend, dev)
        gt_depth = _fit_depth(item.depth, size) if item.depth is not None else None
        m = {k: view_metrics(systems[k], fitted[None], None) for k in SYSTEMS}
        row: dict[str, Any] = {"name": item.name, "kind": kind, "source": item.source, "licence": item.licence,
                               "size": list(size), "camera": scene.metadata["camera"], "metrics": m}
        if gt_depth is not None:
            d = _depth_row(scene.depth.float().cpu(), gt_depth, systems["ours"].depth[0])
            depth_rows.append({"name": item.name, "source": item.source, "licence": item.licence,
                               "outdoor": item.outdoor, "kind": kind, "size": list(size), "depth": d})
        row["seconds"] = time.perf_counter() - t0
        input_rows.append(row)
        sheet.append((f"{item.name} input", [fitted, systems["ours"].rgb[0], systems["filled_warp"].rgb[0], fitted]))
        if log:
            o, f = m["ours"], m["filled_warp"]
            dd = f", depth AbsRel {depth_rows[-1]['depth']['depth_net']['abs_rel']:.3f}" if gt_depth is not None else ""
            log(f"  {item.name:<22} {size[0]}x{size[1]} input view: ours {o['psnr']:.2f} dB / sharp "
                f"{o['sharpness']:.2f}; filled warp {f['psnr']:.2f} dB{dd} ({row['seconds']:.1f} s)")
        return scene, fitted, size

    for item in rgbd:
        run(item, "rgbd")
    for pair in stereo:
        scene, fitted, size = run(pair.left, "stereo")
        H, W = size
        scale = max(W / pair.left.image.shape[-1], H / pair.left.image.shape[-2])
        disp = _fit_depth(pair.disparity, size) * scale
        right_cam, b = stereo_right_camera(scene.cameras[0, 0], disp, scene.depth.float().cpu())
        systems = _systems(scene, fitted, right_cam.reshape(1), backend, dev)
        real = _fit(pair.right, size)
        holes = systems["warp"].alpha < HOLE_ALPHA
        m = {k: view_metrics(systems[k], real[None], None, holes=holes) for k in SYSTEMS}
        novel["stereo"].append({"name": pair.left.name, "baseline": b, "metrics": m})
        sheet.append((f"{pair.left.name} right", [fitted, systems["ours"].rgb[0], systems["filled_warp"].rgb[0], real]))
    if fern is not None:
        i0, targets = _fern_views(fern)
        item = RealImage(f"{fern.name}/{fern.files[i0]}", "LLFF fern", "unclear", fern.images[i0], fern.K)
        scene, fitted, size = run(item, "fern")
        c2w, s, npts = fern_alignment(fern, size, scene.depth.float().cpu(), i0)
        base = fit_cameras_to_size(Cameras(fern.K, torch.eye(4), fern.images.shape[-1], fern.images.shape[-2]), *size)
        cams = Cameras(base.K.expand(len(targets), 3, 3).clone(), c2w[targets], size[1], size[0])
        systems = _systems(scene, fitted, cams, backend, dev)
        reals = torch.stack([_fit(fern.images[j], size) for j in targets])
        holes = systems["warp"].alpha < HOLE_ALPHA
        for n, j in enumerate(targets):
            one = {k: Views(v.rgb[n:n + 1], None if v.depth is None else v.depth[n:n + 1],
                            None if v.alpha is None else v.alpha[n:n + 1]) for k, v in systems.items()}
            m = {k: view_metrics(one[k], reals[n:n + 1], None, holes=holes[n:n + 1]) for k in SYSTEMS}
            dist = float((fern.c2w[j, :3, 3] - fern.c2w[i0, :3, 3]).norm())
            novel["fern"].append({"name": f"{fern.files[i0]} → {fern.files[j]}", "target": fern.files[j],
                                  "distance_colmap": dist, "metrics": m})
            sheet.append((f"fern {fern.files[i0]}->{fern.files[j]}",
                          [fitted, one["ours"].rgb[0], one["filled_warp"].rgb[0], reals[n]]))
        setting["fern"] = {"input": fern.files[i0], "targets": [fern.files[j] for j in targets], "scale": s,
                           "points": npts}
    for item in scannet:
        run(item, "scannet")
    setting["seconds"] = time.perf_counter() - t_all
    result = {
        "setting": setting,
        "depth": _depth_summary(depth_rows),
        "input_view": _view_summary(input_rows, key="kind"),
        "novel_views": {k: _view_summary(v) for k, v in novel.items() if v},
    }
    return result, sheet


def _mean_metrics(rows: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Mean over rows of ``system → metric → value`` (NaN left out), through :func:`lyra.eval.groups.mean_tables`."""
    table = mean_tables([{"all": r} for r in rows])
    return table.get("all", {})


def _depth_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    groups = {
        "rgbd_all": [r for r in rows if r["kind"] != "stereo"],
        "rgbd_indoor": [r for r in rows if r["kind"] != "stereo" and not r["outdoor"]],
        "rgbd_outdoor_kitti": [r for r in rows if r["kind"] != "stereo" and r["outdoor"]],
        "rgbd_permissive": [r for r in rows if r["kind"] != "stereo" and r["licence"] == "P"],
        "middlebury": [r for r in rows if r["kind"] == "stereo"],
    }
    means = {g: {"images": len(rs), **_mean_metrics([r["depth"] for r in rs])} for g, rs in groups.items() if rs}
    return {"mean": means, "images": rows}


def _view_summary(rows: list[dict[str, Any]], key: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"mean": _mean_metrics([r["metrics"] for r in rows]), "images": rows}
    if key is not None:
        out["by_kind"] = {k: _mean_metrics([r["metrics"] for r in rows if r[key] == k])
                          for k in KINDS if any(r[key] == k for r in rows)}
    return out


# ------------------------------------------------------------------------------------------------ report
def _table(title: str, systems: dict[str, str], values: dict[str, dict[str, float]], metrics: tuple[str, ...]
           ) -> list[str]:
    from lyra.eval.report import METRIC_LABELS, fmt

    present = [m for m in metrics if any(m in values.get(s, {}) for s in systems)]
    lines = [f"**{title}**", "", "| system | " + " | ".join(METRIC_LABELS[m][0] for m in present) + " |",
             "|---|" + "---:|" * len(present)]
    best = {m: best_system({s: values.get(s, {}).get(m, math.nan) for s in systems if s in values}, m)
            for m in present}
    for s, label in systems.items():
        if s not in values:
            continue
        cells = []
        for m in present:
            c = fmt(values[s].get(m), METRIC_LABELS[m][1])
            cells.append(f"**{c}**" if best[m] == s and c != "–" else c)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*lines, ""]


DEPTH_GROUP_TITLES = {
    "rgbd_all": "all RGB-D pairs (Kinect, TUM, NYUv2, SUN RGB-D, KITTI)",
    "rgbd_indoor": "indoor RGB-D (Kinect, TUM, NYUv2, SUN RGB-D)",
    "rgbd_outdoor_kitti": "outdoor RGB-D (KITTI, sparse LiDAR)",
    "rgbd_permissive": "RGB-D with a permissive licence (Kinect, TUM)",
    "middlebury": "Middlebury stereo (depth ∝ 1 / GT disparity)",
}


def markdown_report(result: dict[str, Any]) -> str:
    """The Markdown page of a real-image evaluation (``result`` from :func:`evaluate_real`, plus ``setting`` keys
    ``command``, ``device``, ``date``, ``student``, ``depth`` and ``sheet`` when present)."""
    from lyra.eval.report import fmt

    s = result["setting"]
    c = s["counts"]
    lines = [
        "# Real-image evaluation",
        "",
        f"Photographs with geometric ground truth (`{s.get('data_display', s['data'])}`): {c['rgbd']} RGB-D pairs, "
        f"{c['stereo']} Middlebury stereo pairs, {c['fern']} LLFF fern input view, {c['scannet']} ScanNet frames. "
        f"Depth `{s.get('depth', 'tiny')}`; student `{s.get('student', '?')}`; teacher {s['steps']} steps, seed "
        f"{s['seed']}; working size: each photo's aspect at about the preset's {s['preset_size'][0]}×"
        f"{s['preset_size'][1]} pixel count; input camera: the dataset's intrinsics (Middlebury: none given, the "
        "default 50° vertical field of view)"
        + (f"; {s['device']}, {s['date']}, {s.get('seconds', 0):.0f} s" if s.get("device") else "") + "."
        + (f" Command: `{s['command']}`." if s.get("command") else ""),
        "",
        "**Depth**: the pipeline's depth estimate of the fitted photo (the map the teacher warps with) against the "
        "ground truth resized to the working size (nearest; unknown pixels left out), each map median-scaled "
        "first. Middlebury gives disparity `d`, i.e. depth `f·B/d` with unknown `f·B`: the estimate is compared "
        "with `1/d` after median scaling, which removes that factor. *Constant depth* is any constant map after "
        "median scaling (the bar a depth net must clear); *delivered scene* is the scene's rendered expected depth "
        "at the input camera. Mean per photo.",
        "",
        "| photos | n | estimate AbsRel ↓ | estimate δ<1.25 ↑ | constant AbsRel | constant δ<1.25 | scene AbsRel | "
        "scene δ<1.25 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for g, title in DEPTH_GROUP_TITLES.items():
        m = result["depth"]["mean"].get(g)
        if not m:
            continue
        dn, co, sc = m.get("depth_net", {}), m.get("constant", {}), m.get("scene", {})
        lines.append(f"| {title} | {m['images']} | {fmt(dn.get('abs_rel'), 3)} | {fmt(dn.get('delta1'), 3)} | "
                     f"{fmt(co.get('abs_rel'), 3)} | {fmt(co.get('delta1'), 3)} | {fmt(sc.get('abs_rel'), 3)} | "
                     f"{fmt(sc.get('delta1'), 3)} |")
    lines += ["", "Per photo (estimate AbsRel / δ<1.25; constant):", "", "| photo | licence | size | estimate | "
              "constant |", "|---|---|---|---:|---:|"]
    for r in result["depth"]["images"]:
        d = r["depth"]
        lines.append(f"| {r['name']} | {r['licence']} | {r['size'][1]}×{r['size'][0]} | "
                     f"{fmt(d['depth_net']['abs_rel'], 3)} / {fmt(d['depth_net']['delta1'], 3)} | "
                     f"{fmt(d['constant']['abs_rel'], 3)} / {fmt(d['constant']['delta1'], 3)} |")
    lines.append("")
    iv = result.get("input_view")
    if iv:
        lines += ["**Input view**: the delivered scene rendered at the input camera against the fitted photo, on "
                  "every photo; beside it the filled warp (the photo lifted to one Gaussian per pixel at the same "
                  "depth: the ceiling of this row rather than a competitor; below the photo only by the splats' blur "
                  "and aliasing at depth edges). Sharpness: gradient energy over the photo's (1 = as sharp).", ""]
        lines += _table(f"All {len(iv['images'])} photos (mean)", SYSTEMS, iv["mean"], VIEW_METRICS)
        for kind, vals in iv.get("by_kind", {}).items():
            lines += _table(f"{kind}", SYSTEMS, vals, VIEW_METRICS)
    nv = result.get("novel_views") or {}
    if "stereo" in nv:
        bl = ", ".join(f"{r['name'].split('/')[-1]} b={r['baseline']:.3g}" for r in nv["stereo"]["images"])
        lines += ["**Novel views, stereo** (Middlebury: left in, right out; baseline fitted to the GT disparity in "
                  f"the scene's units: {bl}). *Holes*: pixels where warp-only has no data.", ""]
        lines += _table(f"{len(nv['stereo']['images'])} pairs (mean)", SYSTEMS, nv["stereo"]["mean"], VIEW_METRICS)
    if "fern" in nv:
        f = s.get("fern", {})
        lines += [f"**Novel views, LLFF fern** (input `{f.get('input')}`; targets {', '.join(f.get('targets', []))}: "
                  "the nearest, median and farthest of the other views; poses aligned by a similarity: relative to the "
                  f"input view, scale {fmt(f.get('scale'), 4)} fitted on {f.get('points')} COLMAP sparse points).", ""]
        lines += _table("3 views (mean)", SYSTEMS, nv["fern"]["mean"], VIEW_METRICS)
        lines += ["| view | COLMAP distance | ours PSNR / SSIM / sharpness | filled warp PSNR / SSIM / sharpness |",
                  "|---|---:|---:|---:|"]
        for r in nv["fern"]["images"]:
            o, w = r["metrics"]["ours"], r["metrics"]["filled_warp"]
            lines.append(f"| {r['name']} | {fmt(r['distance_colmap'], 2)} | {fmt(o['psnr'], 2)} / {fmt(o['ssim'], 3)} "
                         f"/ {fmt(o['sharpness'], 2)} | {fmt(w['psnr'], 2)} / {fmt(w['ssim'], 3)} / "
                         f"{fmt(w['sharpness'], 2)} |")
        lines.append("")
    if s.get("sheet"):
        lines += [f"Contact sheet: [{s['sheet']}]({s['sheet']}) — every photo's input view, then each stereo pair's "
                  f"right view and fern's three views, at full size; columns: {' | '.join(SHEET_COLUMNS)}.", "",
                  f"![contact sheet]({s['sheet']})", ""]
    return "\n".join(lines)
