"""Geometric accuracy of exported meshes (and of the Gaussians' centres) against the worlds' true surfaces.

For each held-out test world cached by :mod:`lyra.eval.world_cache` (its generated Gaussians, its six GT
trajectories, and points on its analytic surfaces ray-cast from every GT camera):

1. the visual mesh is built as ``lyra mesh`` builds it (:func:`lyra.mesh.build_meshes`, fusing depth over the
   world's trajectory cameras);
2. the mesh surface is sampled (area-uniform, 200k points); it, the Gaussians' centres and the GT points are
   thinned to one point per cube of :data:`METRIC_VOXEL` × centre depth;
3. each point set P is compared with the GT points G (nearest neighbours, scipy's cKDTree):

   * accuracy = mean distance P → G, completeness = mean distance G → P, **Chamfer** = their mean;
   * at a threshold τ: precision = fraction of P within τ of G, recall = fraction of G within τ of P,
     **F-score** = 2PR / (P + R). τ is relative to the scene's scale: a fraction (1 %, 2 %, 5 %) of the world's
     centre depth (the distance from the input camera to the scene centre; the worlds' units are metres).

Scale: a monocular scene's scale comes from the depth estimate, so the metrics are also given **scale-aligned**
(``aligned``): the prediction scaled about the input camera by the ratio of the median z-depths (in the input
camera's frame, points in front of it and inside the evaluated region) of the GT and of the prediction; ``scale``
reports that ratio.

All three point sets are cropped to the ball of radius :data:`CROP` × centre depth around the input camera: the
worlds' ground truth reaches the horizon (outdoor GT points lie up to ~100 m away) while a scene is made for the
region around its centre, as Tanks-and-Temples crops to a bounding volume. Distances are reported in metres and
as a fraction of the centre depth.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CROP", "TAUS", "evaluate_cached_world", "make_result", "markdown_report", "merge_results", "point_metrics",
           "sample_mesh", "summary"]

#: F-score thresholds as fractions of the world's centre depth.
TAUS = (0.01, 0.02, 0.05)
#: Evaluation region: points within this many centre depths of the input camera.
CROP = 3.0
#: Points are thinned to one per cube of this side (× centre depth) before the metrics.
METRIC_VOXEL = 0.008


def point_metrics(pred: np.ndarray, gt: np.ndarray, taus_abs: list[float]) -> dict[str, Any]:
    """Chamfer and F-scores of points ``pred`` ``[P, 3]`` against ``gt`` ``[G, 3]`` (see the module doc);
    ``taus_abs`` in world units. Empty ``pred``: every distance infinite, every score 0."""
    from scipy.spatial import cKDTree

    if len(pred) == 0:
        return {"accuracy": math.inf, "completeness": math.inf, "chamfer": math.inf,
                "precision": [0.0] * len(taus_abs), "recall": [0.0] * len(taus_abs), "fscore": [0.0] * len(taus_abs)}
    d_pg, _ = cKDTree(gt).query(pred, workers=1)
    d_gp, _ = cKDTree(pred).query(gt, workers=1)
    out: dict[str, Any] = {"accuracy": float(d_pg.mean()), "completeness": float(d_gp.mean())}
    out["chamfer"] = (out["accuracy"] + out["completeness"]) / 2
    out["precision"], out["recall"], out["fscore"] = [], [], []
    for t in taus_abs:
        p, r = float((d_pg <= t).mean()), float((d_gp <= t).mean())
        out["precision"].append(p)
        out["recall"].append(r)
        out["fscore"].append(2 * p * r / (p + r) if p + r > 0 else 0.0)
    return out


def sample_mesh(mesh: Any, count: int = 200_000, seed: int = 0) -> np.ndarray:
    """``count`` area-uniform points on a ``trimesh.Trimesh`` ``[count, 3]`` (deterministic per ``seed``)."""
    import trimesh

    pts, _ = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(pts, dtype=np.float64)


def evaluate_cached_world(folder: str | Path, mesh_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """One cached world → a row: ``seed``, ``family``, ``center_depth``, ``mesh`` / ``gaussians`` metrics
    (:func:`point_metrics`, distances also relative to the centre depth), mesh stats and seconds."""
    from lyra.eval.world_cache import GT_VOXEL, load_cached_world, voxel_thin
    from lyra.mesh import build_meshes

    t0 = time.perf_counter()
    w = load_cached_world(Path(folder))
    meta, gt = w["meta"], w["gt_points"].astype(np.float64)
    cd = float(meta["center_depth"])
    taus = [t * cd for t in TAUS]
    res = build_meshes(w["gaussians"], w["cameras"], **(mesh_options or {}))
    t_mesh = time.perf_counter() - t0
    vox = max(GT_VOXEL, METRIC_VOXEL) * cd
    c2w = w["cameras"].c2w[0].double().numpy()  # the input camera (frame 0 of the first trajectory)
    eye, R = c2w[:3, 3], c2w[:3, :3]

    def crop(p: np.ndarray) -> np.ndarray:
        return p[np.linalg.norm(p - eye, axis=1) <= CROP * cd]

    def median_z(p: np.ndarray) -> float:
        z = (p - eye) @ R[:, 2]
        return float(np.median(z[z > 0])) if np.any(z > 0) else math.nan

    gt = crop(voxel_thin(gt, vox))
    z_gt = median_z(gt)
    row: dict[str, Any] = {"seed": meta["seed"], "family": meta["family"], "center_depth": cd,
                           "gt_points": int(len(gt)), "gaussians": int(len(w["gaussians"]))}
    raw = {"mesh": voxel_thin(sample_mesh(res.visual), vox), "gaussians": voxel_thin(w["gaussians"].means.double()
                                                                                     .numpy(), vox)}
    for name, pts in raw.items():
        m = point_metrics(crop(pts), gt, taus)
        m["chamfer_rel"] = m["chamfer"] / cd
        m["points"] = int(len(crop(pts)))
        scale = z_gt / median_z(crop(pts))
        if not math.isfinite(scale) or scale <= 0:
            scale = 1.0
        a = point_metrics(crop(eye + (pts - eye) * scale), gt, taus)
        a["chamfer_rel"] = a["chamfer"] / cd
        a["scale"] = scale
        m["aligned"] = a
        row[name] = m
    row["mesh_stats"] = res.stats
    row["seconds"] = {"mesh": round(t_mesh, 2), "total": round(time.perf_counter() - t0, 2)}
    return row


def _mean(rows: list[dict[str, Any]], get: Any) -> float:
    vals = [get(r) for r in rows]
    vals = [v for v in vals if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else math.nan


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over worlds of every metric, per point set (raw, and ``aligned``)."""
    out: dict[str, Any] = {}
    for what in ("mesh", "gaussians"):
        for sub in ("raw", "aligned"):
            def pick(r: dict[str, Any], sub: str = sub, what: str = what) -> dict[str, Any]:
                return r[what] if sub == "raw" else r[what]["aligned"]

            d = {k: _mean(rows, lambda r, k=k, pick=pick: pick(r)[k])
                 for k in ("accuracy", "completeness", "chamfer", "chamfer_rel")}
            for k in ("precision", "recall", "fscore"):
                d[k] = [_mean(rows, lambda r, k=k, i=i, pick=pick: pick(r)[k][i]) for i in range(len(TAUS))]
            if sub == "aligned":
                d["scale"] = _mean(rows, lambda r, what=what: r[what]["aligned"]["scale"])
                out[what]["aligned"] = d
            else:
                out[what] = d
    return out


def _seed_ranges(seeds: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` → ``"0–2, 5, 7–8"``."""
    runs: list[list[int]] = []
    for s in sorted(seeds):
        if runs and s == runs[-1][1] + 1:
            runs[-1][1] = s
        else:
            runs.append([s, s])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)


def make_result(setting: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A report: ``setting`` (``seeds`` set to the evaluated worlds, ``worlds`` to their number, ``missing`` to the
    planned seeds, ``setting["planned"]``, not evaluated yet), the world rows in seed order and their ``mean``.

    A run writes this after every world, so a part cut short leaves the worlds it finished; ``missing`` says which
    of its planned worlds it did not reach."""
    rows = sorted(rows, key=lambda r: r["seed"])
    done = [r["seed"] for r in rows]
    planned = list(setting.get("planned", done))
    setting = {**setting, "planned": planned, "worlds": len(rows), "seeds": done,
               "missing": [s for s in planned if s not in done]}
    return {"setting": setting, "worlds": rows, "mean": summary(rows) if rows else {}}


#: Settings that must agree between the parts of a split run (:func:`merge_results`).
MERGE_FIXED = ("world_preset", "steps", "seed", "depth", "mesh", "weights_key")


def merge_results(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from the reports of a run split into parts (``--first`` / ``--worlds``, e.g. run in parallel):
    the world rows joined in seed order, the means recomputed, ``planned`` the union of the parts' planned worlds
    (so ``missing`` lists every planned world that no part finished), ``parts`` their number, ``seconds`` the sum.

    Raises:
        ConfigError: no parts; parts whose settings differ in :data:`MERGE_FIXED` (not one benchmark); a world in
            more than one part; no world evaluated at all.
    """
    from lyra.errors import ConfigError

    if not parts:
        raise ConfigError("nothing to merge")
    base = parts[0]["setting"]
    for p in parts[1:]:
        diff = [k for k in MERGE_FIXED if p["setting"].get(k) != base.get(k)]
        if diff:
            raise ConfigError(f"the parts differ in {', '.join(diff)}: they are not one benchmark")
    rows = [r for p in parts for r in p["worlds"]]
    seeds = [r["seed"] for r in rows]
    if len(set(seeds)) != len(seeds):
        raise ConfigError("the parts overlap: a world is in more than one")
    if not rows:
        raise ConfigError("the parts hold no evaluated world")
    planned = sorted({s for p in parts for s in p["setting"].get("planned", p["setting"]["seeds"])})
    setting = {**base, "planned": planned, "parts": len(parts),
               "seconds": sum(float(p["setting"].get("seconds", 0.0)) for p in parts)}
    return make_result(setting, rows)


def markdown_report(result: dict[str, Any]) -> str:
    """The Markdown page of a mesh evaluation (``result`` with ``setting``, ``worlds`` rows and ``mean``)."""
    s, rows, mean = result["setting"], result["worlds"], result["mean"]
    taus = " / ".join(f"{t:.0%}" for t in TAUS)
    missing = s.get("missing") or []
    lines = [
        f"# Mesh accuracy — {len(rows)} held-out test worlds"
        + (f" (of {len(rows) + len(missing)} planned; not evaluated: {', '.join(map(str, missing))})"
           if missing else ""),
        "",
        f"Scenes: `lyra.pipeline.ScenePipeline` (tiny preset, {s['depth']} depth, {s['steps']} steps"
        + (f", student `{s['student']}`" if s.get("student") else "") + ") on the input image of test worlds "
        f"{_seed_ranges(s['seeds'])} (world preset `{s['world_preset']}`), the teacher following each world's six "
        "GT trajectories. Mesh: `lyra mesh` defaults (" + ", ".join(f"{k}={v}" for k, v in s["mesh"].items())
        + "), depth fused over the world's trajectory cameras. Ground truth: the world's analytic surfaces ray-cast "
        "from all 6 × T GT cameras (its exact depth maps), thinned to one point per cube of 0.8 % of the centre "
        "depth; the mesh is sampled (200k area-uniform points) and the Gaussians' centres taken as they are, both "
        f"thinned alike; all three cropped to {CROP:g} centre depths around the input camera.",
        "",
        f"Chamfer = (accuracy + completeness) / 2 in metres (accuracy: mean distance from the prediction to the GT; "
        f"completeness: from the GT to the prediction); F-score at τ = {taus} of the world's centre depth. "
        + (f"Command: `{s['command']}`; {s.get('device', '')}, {s.get('date', '')}." if s.get("command") else ""),
        "",
        "| world | family | centre depth (m) | mesh Chamfer (m) | mesh F@1% | mesh F@2% | mesh F@5% | "
        "Gaussians Chamfer (m) | Gaussians F@1% | Gaussians F@2% | Gaussians F@5% | mesh faces |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def fmt(v: float, d: int = 3) -> str:
        return f"{v:.{d}f}" if isinstance(v, (int, float)) and math.isfinite(v) else "–"

    for r in rows:
        m, g = r["mesh"], r["gaussians"]
        lines.append(f"| {r['seed']} | {r['family']} | {fmt(r['center_depth'], 2)} | {fmt(m['chamfer'])} | "
                     + " | ".join(fmt(f) for f in m["fscore"]) + f" | {fmt(g['chamfer'])} | "
                     + " | ".join(fmt(f) for f in g["fscore"]) + f" | {r['mesh_stats']['visual_faces']:,} |")
    m, g = mean["mesh"], mean["gaussians"]
    lines.append("| **mean** | | | **" + fmt(m["chamfer"]) + "** | " + " | ".join(f"**{fmt(f)}**" for f in m["fscore"])
                 + " | **" + fmt(g["chamfer"]) + "** | " + " | ".join(f"**{fmt(f)}**" for f in g["fscore"]) + " | |")
    lines += ["", "**Scale-aligned** (each prediction scaled about the input camera by the ratio of median z-depths, "
              "GT / prediction, in the input camera's frame, of the points inside the evaluated region; `scale` is "
              "that ratio):", "",
              "| world | mesh scale | mesh Chamfer (m) | mesh F@1% | mesh F@2% | mesh F@5% | Gaussians scale | "
              "Gaussians Chamfer (m) | Gaussians F@1% | Gaussians F@2% | Gaussians F@5% |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        m, g = r["mesh"]["aligned"], r["gaussians"]["aligned"]
        lines.append(f"| {r['seed']} | {fmt(m['scale'], 2)} | {fmt(m['chamfer'])} | "
                     + " | ".join(fmt(f) for f in m["fscore"]) + f" | {fmt(g['scale'], 2)} | {fmt(g['chamfer'])} | "
                     + " | ".join(fmt(f) for f in g["fscore"]) + " |")
    m, g = mean["mesh"]["aligned"], mean["gaussians"]["aligned"]
    lines.append(f"| **mean** | {fmt(m['scale'], 2)} | **{fmt(m['chamfer'])}** | "
                 + " | ".join(f"**{fmt(f)}**" for f in m["fscore"]) + f" | {fmt(g['scale'], 2)} | "
                 f"**{fmt(g['chamfer'])}** | " + " | ".join(f"**{fmt(f)}**" for f in g["fscore"]) + " |")
    m, g = mean["mesh"], mean["gaussians"]
    empty = [str(r["seed"]) for r in rows if not math.isfinite(r["mesh"]["chamfer"])]
    if empty:
        lines += ["", f"Worlds whose mesh has no point inside the evaluated region (Chamfer infinite, F-scores 0; left "
                  f"out of the Chamfer means, counted as 0 in the F-score means): {', '.join(empty)}."]
    lines += ["", "Means over worlds — accuracy / completeness (m): mesh "
              f"{fmt(m['accuracy'])} / {fmt(m['completeness'])}, Gaussians {fmt(g['accuracy'])} / "
              f"{fmt(g['completeness'])}; Chamfer relative to the centre depth: mesh {fmt(m['chamfer_rel'])}, "
              f"Gaussians {fmt(g['chamfer_rel'])}.", ""]
    return "\n".join(lines)
