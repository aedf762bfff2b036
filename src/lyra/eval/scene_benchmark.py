"""The product benchmark: image → 3D Gaussians → views, against exact ground truth (``lyra eval scene``).

For each of the first N held-out test worlds (:mod:`lyra.world`, split ``test``; the example centre-cropped to
multiples of 16 pixels as the teacher evaluation does, :func:`lyra.world.load_example`):

1. the world's input image goes through :class:`lyra.pipeline.ScenePipeline` exactly as a user's photo would,
   except that the teacher follows the world's own six ground-truth trajectory cameras (``Cameras [6, T]``,
   frame 0 = the input camera) so that every generated view has a ground-truth frame; the depth is the tiny
   depth net's estimate (``depth="tiny"``, what a user gets) or the world's exact depth (``"exact"``);
2. the delivered Gaussians (pruned, as :func:`lyra.pipeline.generate` returns them) are rendered at the GT
   cameras (RGB, expected depth, alpha; white background);
3. every frame is compared with the GT renders in three groups (:mod:`lyra.eval.groups`): the **input view**
   (frame 0 against the input image), **near** views (the first quarter of each trajectory) and **far** views.

Four systems, one table per group (:func:`lyra.eval.groups.group_metrics`): PSNR, SSIM, MS-SSIM, GMSD, the
sharpness ratio, LPIPS (when local weights are given), rendered-depth AbsRel and δ<1.25 (after per-frame median
scaling when the depth is estimated: the estimate fixes the scene's scale, the GT cameras do not), coverage, and
the same on the disoccluded pixels:

* **ours** (key ``student``) — the delivered scene: the input-view Gaussians (one surfel per pixel of the photo,
  :mod:`lyra.student.input_view`) and the latent head's Gaussians they do not duplicate (shrunk where they would
  show over the photo at its camera);
* **latent head alone** (key ``latent``, when the pipeline adds input-view Gaussians) — the same run's latent head
  Gaussians (pruned), Lyra's decoder output: the ablation of the input-view Gaussians;
* **filled warp** — warp-only with its holes inpainted (OpenCV Telea, :func:`lyra.eval.baselines.filled_warp`):
  the honest baseline;
* **warp-only** — the input image lifted to one Gaussian per pixel with the depth the teacher warped with,
  rendered at the same cameras, white where nothing projects;
* **teacher** — the teacher's own decoded frames (no geometry).

Each world also reports the delivered Gaussians' statistics (:func:`gaussian_stats`: count, scales, how many sit
at the scale cap, their depth in the input camera against the true input depth).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lyra.errors import ConfigError
from lyra.eval.baselines import HOLE_ALPHA, Views, filled_warp, render_views, warp_only_gaussians
from lyra.eval.groups import FRAME_GROUPS, frame_groups, group_metrics, mean_rows, mean_tables, winners
from lyra.eval.report import sheet_rows
from lyra.gaussians import Gaussians
from lyra.geometry.cameras import Cameras

__all__ = ["SHEET_COLUMNS", "SYSTEMS", "check_options", "evaluate_scenes", "evaluate_world", "gaussian_stats",
           "markdown_report", "merge_results", "summarize_rows"]

#: The compared systems (JSON key → name in the reports), in table order.
SYSTEMS = {"student": "ours", "latent": "latent head alone", "filled_warp": "filled warp", "warp": "warp-only",
           "teacher": "teacher"}
#: The contact sheet's columns.
SHEET_COLUMNS = ("input", "ours", "latent head alone", "filled warp", "warp-only", "teacher", "ground truth")
#: The "photo" of the high-resolution delivery check: the world rendered at this multiple of the working size
#: (3.5 × 176 × 320 = 616 × 1120, the working aspect exactly), delivered at 1024 px on the long side.
PHOTO_SCALE = 3.5
#: Salt mixed with ``seed`` and the world seed into the sampler seed (the same as ``lyra eval teacher``, so
#: that with exact depth both evaluations sample the same teacher latents).
SAMPLER_SALT = 19

Log = Callable[[str], None]


def _percentiles(v: Tensor, qs: tuple[float, ...] = (0.05, 0.5, 0.95)) -> list[float]:
    v = v[torch.isfinite(v)].double()
    if v.numel() == 0:
        return [math.nan] * len(qs)
    return [float(x) for x in torch.quantile(v[:: max(1, v.numel() // 1_000_000)], torch.tensor(qs, dtype=v.dtype))]


def gaussian_stats(gaussians: Gaussians, camera: Cameras, input_depth: Tensor, scale_cap: float | None,
                   at_cap: float | None = None) -> dict:
    """What the delivered Gaussians look like: ``count``; ``scale_p05/p50/p95`` of each Gaussian's largest
    scale; ``at_scale_cap``: ``at_cap`` when given (the fraction the decoder itself flagged:
    :meth:`~lyra.student.LatentDecoder.scale_saturation`), else the fraction whose largest scale is within 0.1 % of
    ``scale_cap`` (NaN without a cap); ``over_world_cap``: that last fraction whatever ``at_cap`` says (it also counts
    input-view surfels wider than the cap, which have no cap);
    ``depth_p05/p50/p95`` of their centres' z-depth in the input ``camera`` (batch shape ``[]``) beside
    ``input_depth_p05/p50/p95`` of the true input depth ``[H, W]`` (finite pixels); ``opacity_p50``."""
    out: dict[str, Any] = {"count": len(gaussians)}
    smax = gaussians.scales.float().amax(dim=-1) if len(gaussians) else torch.zeros(0)
    z = camera.project(gaussians.means.float().cpu())[1] if len(gaussians) else torch.zeros(0)
    for name, values in (("scale", smax), ("depth", z), ("input_depth", input_depth.float())):
        out.update(zip((f"{name}_p05", f"{name}_p50", f"{name}_p95"), _percentiles(values), strict=True))
    out["over_world_cap"] = (float((smax >= scale_cap * (1 - 1e-3)).float().mean())
                             if scale_cap is not None and len(gaussians) else math.nan)
    out["at_scale_cap"] = float(at_cap) if at_cap is not None else out["over_world_cap"]
    out["opacity_p50"] = _percentiles(gaussians.opacities.float(), (0.5,))[0] if len(gaussians) else math.nan
    return out


def _scale_cap(pipe: Any) -> float | None:
    """The student's world-unit scale cap (``None`` when its scales are not capped in scene units)."""
    act = getattr(getattr(pipe, "student", None), "activations", None)
    if getattr(act, "footprint", False):
        return None
    cap = getattr(act, "scale_cap", None)
    return float(cap) if isinstance(cap, (int, float)) else None


def _at_cap(scene: Any, delivered: Any) -> tuple[float | None, float | None]:
    """(latent head's Gaussians, all delivered ones) at the scale cap, from the decoder's own flags
    (``metadata["latent_at_scale_cap"]`` of the pruned latent set): the delivered fraction counts every flagged
    latent Gaussian over the delivered total (input-view surfels have no cap), an upper bound since the input-view
    merge drops or shrinks some of them. ``(None, None)`` when the pipeline did not flag."""
    frac = scene.metadata.get("latent_at_scale_cap")
    if frac is None or not len(delivered.gaussians):
        return None, None
    return float(frac), float(frac) * len(scene.gaussians) / len(delivered.gaussians)


@torch.no_grad()
def _input_hd(delivered: Any, latent: Any, photo: Tensor, backend: str) -> dict[str, dict[str, float]]:
    """The input view at the delivery size: ``delivered`` (and the ``latent``-only scene) rendered at the input camera
    scaled to ``metadata["input_view"]["size"]``, against the photo's crop resized to that size."""
    from lyra.eval.metrics import psnr, sharpness_ratio, ssim
    from lyra.inputs import fit_to_size, photo_crop

    h, w = delivered.depth.shape
    Hd, Wd = delivered.metadata["input_view"]["size"]
    gt, _ = fit_to_size(photo_crop(photo.float().cpu(), h, w), Hd, Wd)
    cam = delivered.input_camera.resize(Wd, Hd).reshape(1)
    out = {}
    for name, sc in (("student", delivered), ("latent", latent)):
        dev = sc.gaussians.means.device
        p = render_views(sc.gaussians, cam.to(dev), backend, chunk=1).rgb[0].cpu()
        out[name] = {"psnr": float(psnr(p, gt)), "ssim": float(ssim(p[None], gt[None])),
                     "sharpness": float(sharpness_ratio(p[None], gt[None]))}
    out["size"] = {"height": float(Hd), "width": float(Wd)}
    return out


def hires_photo(seed: int, example: Any, preset: Any, scale: float = PHOTO_SCALE,
                device: str | torch.device = "cpu") -> Tensor:
    """The test world of ``seed`` rendered at its input camera (``example.cameras[0, 0]``) scaled ``scale`` times:
    a "photo" ``[3, round(scale·H), round(scale·W)]`` of the same view at a higher resolution (CPU)."""
    from lyra.world import sample_world
    from lyra.world.render import render as render_world

    ws = sample_world(seed, preset)
    cam = example.cameras[0, 0]
    hi = cam.resize(round(cam.width * scale), round(cam.height * scale)).to(device)
    return render_world(ws.scene, hi).rgb.clamp(0, 1).cpu()


def evaluate_world(pipe: Any, example: Any, exact_depth: bool, seed: int, steps: int, lpips: Any = None,
                   backend: str = "auto", progress: bool = False,
                   photo: Tensor | None = None) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """One world: its input image → :class:`~lyra.pipeline.Scene` along its GT trajectories → metric table.

    Args:
        pipe: a loaded :class:`lyra.pipeline.ScenePipeline`.
        example: a :class:`lyra.world.Example` (sides multiples of 16; CPU).
        exact_depth: give the teacher the world's exact input depth (else the pipeline's estimator runs).
        seed: the sampler seed (the world's GT trajectories make the trajectory draw unused).
        lpips: a callable ``(pred, gt) → [n]`` LPIPS distances, or ``None``.
        photo: the same input view at a higher resolution (:func:`hires_photo`): ``row["input_hd"]`` scores the
            scene with input-view Gaussians made from it (at up to ``pipe.input_resolution`` px) at its own size.
            The frame groups score the scene at the working size (input-view Gaussians from the working-size
            image): a splat scene seen at a fraction of its resolution aliases, in every 3DGS renderer.

    Returns:
        ``(row, frames)``: ``row`` holds ``table`` (:data:`~lyra.eval.groups.Table`: group → system → metric),
        ``scene`` (:func:`gaussian_stats`), ``warp_gaussians``, ``max_camera_offset`` (largest distance between
        the scene's and the GT camera centres: 0 when the teacher followed the GT cameras) and ``timings_s``;
        ``frames`` holds RGB videos ``[V, T, 3, H, W]`` (CPU) of every system and ``gt``.
    """
    from lyra.pipeline import with_input_view

    ex = example
    H, W = ex.image.shape[-2:]
    scene = pipe(ex.image, seed=seed, steps=steps, size=(H, W), trajectory=ex.cameras,
                 depth_map=ex.depth if exact_depth else None, progress=progress, decode_videos=True,
                 input_resolution=0)
    max_side = int(getattr(pipe, "input_resolution", 0) or 0)
    delivered = with_input_view(scene, ex.image, max_side) if max_side else scene
    dev = pipe.device
    cams = ex.cameras
    t0 = time.perf_counter()
    warp_g = warp_only_gaussians(ex.image, scene.depth, cams[0, 0]).to(dev)
    warp = render_views(warp_g, cams, backend).cpu()
    systems = {"student": render_views(delivered.gaussians.to(dev), cams, backend).cpu()}
    if delivered is not scene:
        systems["latent"] = render_views(scene.gaussians.to(dev), cams, backend).cpu()
    systems.update(filled_warp=filled_warp(warp), warp=warp, teacher=Views(scene.videos.float().cpu()))
    render_s = time.perf_counter() - t0
    table = group_metrics(systems, ex.videos.float().cpu(), ex.depths.float().cpu(),
                          depth_align="none" if exact_depth else "median", lpips=lpips,
                          holes=warp.alpha < HOLE_ALPHA, input_image=ex.image.float().cpu())
    at_cap_latent, at_cap_all = _at_cap(scene, delivered)
    row: dict[str, Any] = {
        "table": table,
        "scene": gaussian_stats(delivered.gaussians, cams[0, 0].to("cpu"), ex.depth.cpu(), _scale_cap(pipe),
                                at_cap_all),
        "latent_scene": gaussian_stats(delivered.gaussians[delivered.latent_start:], cams[0, 0].to("cpu"),
                                       ex.depth.cpu(), _scale_cap(pipe), at_cap_latent),
        "input_view": delivered.metadata.get("input_view"),
        "input_hd": (_input_hd(with_input_view(scene, photo, max_side), scene, photo, backend)
                     if photo is not None and max_side else None),
        "warp_gaussians": len(warp_g),
        "max_camera_offset": float((scene.cameras.centers - cams.centers).norm(dim=-1).max()),
        "timings_s": {**scene.metadata["timings_s"], "render_and_metrics": round(time.perf_counter() - t0, 4),
                      "render": round(render_s, 4)},
    }
    frames = {k: v.rgb for k, v in systems.items()}
    frames["gt"] = ex.videos.cpu()
    return row, frames


def evaluate_scenes(pipe: Any, worlds: int = 8, world_preset: str = "tiny", steps: int = 35, seed: int = 0,
                    exact_depth: bool = False, sheet_trajectory: str = "left", lpips: Any = None,
                    backend: str = "auto", progress: bool = False, log: Log | None = None, sheet_worlds: int = 4,
                    first: int = 0, photo_scale: float | None = PHOTO_SCALE
                    ) -> tuple[dict[str, Any], list[tuple[str, list[Tensor]]]]:
    """The scene benchmark on the first ``worlds`` test worlds (see the module doc).

    Args:
        pipe: a loaded :class:`lyra.pipeline.ScenePipeline` (its device runs the models; metrics on the CPU).
        worlds: number of test worlds (test seeds ``0 … worlds−1`` of :func:`lyra.world.split_seeds`).
        world_preset: :mod:`lyra.world` preset (``tiny``: 17 × 176 × 320; ``micro`` for tests).
        steps, seed: sampler steps; seed mixed with each world seed (as ``lyra eval teacher``).
        exact_depth: the world's depth instead of the pipeline's estimate.
        sheet_trajectory: the trajectory whose frames go into the contact sheet.
        lpips: an LPIPS callable (adds ``lpips`` to the tables) or ``None``.
        log: one line per world (default: silent).
        sheet_worlds: how many worlds (the first ones, not chosen) get rows in the contact sheet.
        first: start at the ``first``-th test world (a part of a split run; :func:`merge_results`).
        photo_scale: also render each world's input view at this multiple of the working size
            (:func:`hires_photo`), a user's photo, and score the input view delivered from it at its own size
            (``input_hd``); ``None``: skip that.

    Returns:
        ``(result, rows)``: ``result`` with ``setting``, ``worlds`` (one row per world: ``seed``, ``family``,
        ``center_depth``, the :func:`evaluate_world` keys, ``seconds``), ``mean`` (the tables averaged over
        worlds), ``scene`` (the Gaussian statistics averaged over worlds) and ``winners`` (group → metric → system);
        ``rows`` for :func:`lyra.eval.report.contact_sheet` (:func:`lyra.eval.report.sheet_rows`).

    Raises:
        ConfigError: bad ``worlds``, ``steps``, ``seed``, ``world_preset`` or ``sheet_trajectory``.
    """
    from lyra.geometry.trajectories import TRAJECTORY_NAMES
    from lyra.seeds import mix_seed
    from lyra.student.inference import PRUNE_RATIO
    from lyra.world import get_preset, load_example

    seeds = check_options(worlds, steps, seed, sheet_trajectory, first)
    preset = get_preset(world_preset)
    v_sheet = TRAJECTORY_NAMES.index(sheet_trajectory)
    rows: list[dict[str, Any]] = []
    sheet: list[tuple[str, list[Tensor]]] = []
    for s in seeds:
        t0 = time.perf_counter()
        ex = load_example(s, preset.name, str(pipe.device)).to("cpu")
        if ex.cameras.shape[0] != len(TRAJECTORY_NAMES):
            raise ConfigError(f"world {s} has {ex.cameras.shape[0]} trajectories, expected {len(TRAJECTORY_NAMES)}")
        photo = hires_photo(s, ex, preset, photo_scale, pipe.device) if photo_scale else None
        row, fr = evaluate_world(pipe, ex, exact_depth, mix_seed(seed, s, SAMPLER_SALT) % 2**31, steps, lpips,
                                 backend, progress, photo)
        rows.append({"seed": s, "family": ex.family, "center_depth": float(ex.center_depth), **row,
                     "seconds": time.perf_counter() - t0})
        if len(rows) <= sheet_worlds:
            sheet += sheet_rows(f"{s} {ex.family}", ex.image, fr, v_sheet, tuple(k for k in SYSTEMS if k in fr))
        if log is not None:
            t = row["table"]
            log(f"  world {s:>3} ({ex.family:7}): " + "; ".join(
                f"{g} PSNR/SSIM/sharp ours {t[g]['student']['psnr']:.2f}/{t[g]['student']['ssim']:.3f}/"
                f"{t[g]['student']['sharpness']:.2f} filled warp {t[g]['filled_warp']['psnr']:.2f}/"
                f"{t[g]['filled_warp']['ssim']:.3f}/{t[g]['filled_warp']['sharpness']:.2f}" for g in t)
                + f" ({rows[-1]['seconds']:.1f} s)")
    result = {
        "setting": {"worlds": len(seeds), "seeds": seeds, "world_preset": preset.name, "steps": steps, "seed": seed,
                    "depth": "exact" if exact_depth else "estimate",
                    "depth_align": "none" if exact_depth else "median", "frames": int(ex.videos.shape[1]),
                    "height": int(ex.videos.shape[-2]), "width": int(ex.videos.shape[-1]),
                    "groups": frame_groups(int(ex.videos.shape[1])), "sheet_trajectory": sheet_trajectory,
                    "sheet_worlds": min(sheet_worlds, len(seeds)), "lpips": lpips is not None,
                    "prune_ratio": PRUNE_RATIO, "backend": backend, "hole_alpha": HOLE_ALPHA,
                    "sheet_columns": ["input", *(SYSTEMS[k] for k in SYSTEMS if k in fr), "ground truth"],
                    "photo_scale": photo_scale, "input_resolution": int(getattr(pipe, "input_resolution", 0) or 0)},
        **summarize_rows(rows),
        "worlds": rows,
    }
    return result, sheet


def check_options(worlds: int, steps: int, seed: int, sheet_trajectory: str, first: int = 0) -> list[int]:
    """Validate the benchmark options (ConfigError with what to do); return the test seeds to evaluate: ``worlds``
    of them from the ``first``-th test world on (a run split into parts, see :func:`merge_results`)."""
    from lyra.geometry.trajectories import TRAJECTORY_NAMES
    from lyra.world import split_seeds

    all_seeds = list(split_seeds("test"))
    if isinstance(worlds, bool) or not isinstance(worlds, int) or worlds < 1:
        raise ConfigError(f"--worlds must be >= 1, got {worlds}")
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise ConfigError(f"--first must be >= 0, got {first}")
    if first + worlds > len(all_seeds):
        raise ConfigError(f"--worlds: the test split holds {len(all_seeds)} worlds, got {first} + {worlds}")
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    if seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {seed}")
    if sheet_trajectory not in TRAJECTORY_NAMES:
        raise ConfigError(f"--sheet-trajectory must be one of {', '.join(TRAJECTORY_NAMES)}, got {sheet_trajectory!r}")
    return all_seeds[first:first + worlds]


def summarize_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``mean`` (tables averaged over worlds), ``winners`` and ``scene`` (Gaussian statistics averaged) of world
    rows."""
    mean = mean_tables([r["table"] for r in rows])
    out = {"mean": mean, "winners": winners(mean), "scene": mean_rows(r["scene"] for r in rows)}
    if all(r.get("latent_scene") for r in rows):
        out["latent_scene"] = mean_rows(r["latent_scene"] for r in rows)
    hd = [r["input_hd"] for r in rows if r.get("input_hd")]
    if hd:
        out["input_hd"] = {k: mean_rows(h[k] for h in hd) for k in hd[0]}
    return out


def merge_results(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from the results of a run split into parts (``--first`` / ``--worlds``), e.g. run in parallel:
    the world rows concatenated in seed order, the means recomputed; the settings must agree except for the
    worlds, seeds, timings and date (ConfigError otherwise); the first part's sheet is kept."""
    if not parts:
        raise ConfigError("nothing to merge")
    fixed = ("world_preset", "steps", "seed", "depth", "frames", "height", "width", "lpips", "prune_ratio",
             "student_sha256")
    base = parts[0]["setting"]
    for p in parts[1:]:
        diff = [k for k in fixed if p["setting"].get(k) != base.get(k)]
        if diff:
            raise ConfigError(f"the parts differ in {', '.join(diff)}: they are not one benchmark")
    rows = sorted((r for p in parts for r in p["worlds"]), key=lambda r: r["seed"])
    seeds = [r["seed"] for r in rows]
    if len(set(seeds)) != len(seeds):
        raise ConfigError("the parts overlap: a world is in more than one")
    setting = dict(base)
    setting.update(worlds=len(rows), seeds=seeds, parts=len(parts),
                   seconds=sum(float(p["setting"].get("seconds", 0.0)) for p in parts))
    return {"setting": setting, **summarize_rows(rows), "worlds": rows}


def _input_view_lines(result: dict[str, Any]) -> list[str]:
    """The report's paragraphs on the input-view Gaussians and the high-resolution delivery (if measured)."""
    from lyra.eval.report import fmt

    s, lines = result["setting"], []
    iv = [r["input_view"] for r in result["worlds"] if r.get("input_view")]
    if iv:
        lat = result.get("latent_scene", {})
        n = sum(v["gaussians"] for v in iv) / len(iv)
        kept = sum(v["latent_kept"] for v in iv) / len(iv)
        dropped = sum(v["latent_dropped"] for v in iv) / len(iv)
        shrunk = [v["latent_shrunk"] for v in iv if "latent_shrunk" in v]
        shrunk_text = (f"; {fmt(sum(shrunk) / len(shrunk), 0)} of the kept ones were shrunk so that their footprint "
                       "at the input camera stays behind the visible surface" if shrunk else "")
        lines += [f"**Input-view Gaussians** (`--input-resolution {s.get('input_resolution')}`): one per pixel of "
                  f"the photo, {fmt(n, 0)} per world on average, in front of {fmt(kept, 0)} latent-head Gaussians "
                  f"(of which {fmt(100 * lat.get('at_scale_cap', math.nan), 1)} % sit at the scale cap); "
                  f"{fmt(dropped, 0)} latent-head Gaussians on or in front of the visible surface were dropped as "
                  f"redundant{shrunk_text}. *Latent head alone* is the same run's latent Gaussians without them "
                  "(Lyra's decoder output, pruned as before).", ""]
    hd = result.get("input_hd")
    if hd:
        size = hd.get("size", {})
        lines += [f"**Input view at the delivery size** ({fmt(size.get('height'), 0)} × {fmt(size.get('width'), 0)}; "
                  f"the photo is the world rendered at {s.get('photo_scale')} × the working size): ours PSNR "
                  f"{fmt(hd['student'].get('psnr'), 2)} dB, SSIM {fmt(hd['student'].get('ssim'), 3)}, sharpness "
                  f"{fmt(hd['student'].get('sharpness'), 2)}; latent head alone {fmt(hd['latent'].get('psnr'), 2)} "
                  f"dB, {fmt(hd['latent'].get('ssim'), 3)}, {fmt(hd['latent'].get('sharpness'), 2)}.", ""]
    return lines


def markdown_report(result: dict[str, Any]) -> str:
    """The Markdown page of a scene evaluation (``result`` as :func:`evaluate_scenes` returns it, plus the
    ``setting`` keys ``student``, ``student_sha256``, ``device``, ``date``, ``command``, ``sheet`` when present)."""
    from lyra.eval.report import fmt, group_tables_markdown, winners_markdown

    s = result["setting"]
    rows, mean, st = result["worlds"], result["mean"], result["scene"]
    exact = s["depth"] == "exact"
    depth = "the world's exact depth" if exact else "the tiny depth net's estimate"
    g = s.get("groups") or frame_groups(s["frames"])
    near = f"{g['near'][0]}–{g['near'][-1]}" if g["near"] else "none"
    far = f"{g['far'][0]}–{g['far'][-1]}" if g["far"] else "none"
    lines = [
        f"# Scene evaluation — {s['worlds']} held-out test worlds, {'exact' if exact else 'estimated'} depth",
        "",
        f"Image → 3D through `lyra.pipeline.ScenePipeline` with {depth}; student `{s.get('student', '?')}`"
        + (f" (sha256 {str(s['student_sha256'])[:12]}…)" if s.get("student_sha256") else "")
        + f"; teacher {s['steps']} Euler steps, seed {s['seed']}, following each world's six ground-truth "
        f"trajectories; world preset `{s['world_preset']}` ({s['frames']} frames × {s['height']} × {s['width']}, "
        f"the working size), test seeds {s['seeds'][0]}–{s['seeds'][-1]}"
        + (f"; {s['device']}, {s['date']}" if s.get("device") else "") + "."
        + (f" Command: `{s['command']}`." if s.get("command") else ""),
        "",
        "Systems: **ours** — the delivered Gaussians (input-view Gaussians, one surfel per pixel of the photo, plus "
        "the latent head's that they do not duplicate, shrunk where they would show over the photo at its camera) "
        "rendered at the GT cameras; **latent head alone** — the same "
        "run's latent-head Gaussians without the input-view ones (the ablation); **filled warp** — "
        "warp-only with its holes (alpha < 0.5) inpainted by OpenCV's Telea method, the honest baseline; "
        "**warp-only** — the input image lifted to one Gaussian per pixel with the same input depth, white where "
        "nothing projects; **teacher** — the teacher's decoded frames (no geometry).",
        "",
        f"Frame groups (per trajectory, all six): **input view** = frame 0 against the input image; **near** = "
        f"frames {near}; **far** = frames {far}. PSNR: mean of per-frame values; SSIM (Gaussian 11×11), "
        "MS-SSIM (Wang et al. 2003), GMSD (Xue et al. 2014; lower is better): mean over frames; sharpness: "
        "mean luma gradient magnitude over that of the ground truth on the same pixels (1 = as sharp; below 1 is "
        "blur; above 1 is noise or hard hole edges); depth: rendered expected depth against the true depth"
        + (" (metric)" if exact else ", each frame median-scaled first (estimated depth fixes the scene's scale)")
        + "; coverage: pixels with alpha ≥ 0.5. *Holes*: the disoccluded pixels (where warp-only has alpha "
        "< 0.5); PSNR there pools the MSE over the group. Mean per world, then over worlds; best of each column "
        "in bold."
        + ("" if s.get("lpips") else " LPIPS omitted: no local VGG16/LPIPS weights (--lpips-weights FILE or "
           "$LYRA_LPIPS_WEIGHTS)."),
        "",
        *group_tables_markdown(mean, SYSTEMS),
        "**Which system wins each metric** (mean over worlds):",
        "",
        *winners_markdown(mean, SYSTEMS),
        "**The delivered Gaussians** (mean over worlds): "
        f"{fmt(st.get('count'), 0)} Gaussians; largest scale p5 / p50 / p95 = {fmt(st.get('scale_p05'), 3)} / "
        f"{fmt(st.get('scale_p50'), 3)} / {fmt(st.get('scale_p95'), 3)}; at the scale cap: "
        f"{fmt(100 * st.get('at_scale_cap', math.nan), 1)} %; depth of the centres in the input camera p5 / p50 / "
        f"p95 = {fmt(st.get('depth_p05'), 2)} / {fmt(st.get('depth_p50'), 2)} / {fmt(st.get('depth_p95'), 2)} "
        f"against the true input depth {fmt(st.get('input_depth_p05'), 2)} / {fmt(st.get('input_depth_p50'), 2)} "
        f"/ {fmt(st.get('input_depth_p95'), 2)}; median opacity {fmt(st.get('opacity_p50'), 3)}.",
        "",
        *_input_view_lines(result),
        "Per world (PSNR / SSIM / sharpness of ours and of the filled warp):",
        "",
        "| world | family | " + " | ".join(f"{grp} ours | {grp} filled warp" for grp in FRAME_GROUPS)
        + " | Gaussians | at cap |",
        "|---|---|" + "---:|" * (2 * len(FRAME_GROUPS) + 2),
    ]
    for r in rows:
        t = r["table"]
        cells = []
        for grp in FRAME_GROUPS:
            for sysname in ("student", "filled_warp"):
                m = t.get(grp, {}).get(sysname, {})
                cells.append(f"{fmt(m.get('psnr'), 2)} / {fmt(m.get('ssim'), 3)} / {fmt(m.get('sharpness'), 2)}")
        lines.append(f"| {r['seed']} | {r['family']} | " + " | ".join(cells)
                     + f" | {r['scene']['count']} | {fmt(100 * r['scene']['at_scale_cap'], 1)} % |")
    if s.get("sheet"):
        columns = " | ".join(s.get("sheet_columns", SHEET_COLUMNS))
        lines += ["", f"Contact sheet: [{s['sheet']}]({s['sheet']}) — the first {s.get('sheet_worlds', '?')} "
                  "worlds (not chosen), three rows each (input view; the last near frame; the last frame of the "
                  f"`{s['sheet_trajectory']}` trajectory); columns: {columns}; every image at "
                  "full size.", "", f"![contact sheet]({s['sheet']})"]
    lines.append("")
    return "\n".join(lines)
