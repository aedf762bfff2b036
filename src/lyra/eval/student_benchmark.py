"""Fidelity of a trained student on held-out SDG data (CLI: ``python -m lyra.distill.evaluate --student DIR
--data SDG_DIR [--gt]``, :mod:`lyra.distill.evaluate`).

Two measurements, each per frame, averaged per scene, then over scenes (LYRA_FACTS, "Metrics as released";
PSNR on [0, 1], SSIM Gaussian window 11):

* :func:`evaluate_fidelity` — self-distillation fidelity on held-out SDG scenes: the student decodes the
  teacher's latents of all six trajectories, its Gaussians are rendered at every trajectory camera and
  compared with the teacher's decoded frames; once with all Gaussians and once pruned to 20 %
  (``prune_cost_db`` = PSNR lost by pruning).
* :func:`evaluate_gt` — ground truth, for SDG scenes made from procedural worlds: the world is regenerated
  from the world seed stored with the sample (:func:`lyra.world.make_example` with the SDG's world preset,
  centre-cropped like the SDG crops), and compared on frames ``1 … T − 1`` of the six trajectories (frame 0 is
  the input view) with: the student's renders at the GT cameras, the teacher's decoded frames, and a
  warp-only baseline — the input image lifted with the input depth the teacher used
  (:func:`lyra.gaussians.gaussians_from_depth`) and rendered at the same cameras.

A student trained with ``--single-view`` is evaluated the same way it was trained (each trajectory decoded
alone, Gaussians merged): its export says so.

Dynamic students on dynamic SDG data (:mod:`lyra.student.dynamic`; chosen automatically from the data):

* :func:`evaluate_dynamic_fidelity` — the student reads the six *forward* trajectories (what it reads at
  inference: one video's) with their source times; for every target time ``τ = t_g`` (every
  ``frame_stride``-th frame and the last) its Gaussians at ``τ`` are rendered into the camera of every frame
  that shows ``τ`` — frame ``g`` of the forward trajectories and, with motion reversal, frame ``T − 1 − g`` of
  the reversed ones — and compared with the teacher's frames there (``psnr_forward``/``psnr_reversed`` split
  them; the reversed frames are views the student did not read at ``τ``);
* :func:`evaluate_gt` on dynamic world scenes (the same function; a static scene is the case of one time): the
  world regenerated (``dynamic=True``), and for ``τ = t_g``: the student at ``τ`` rendered at the GT cameras of
  frame ``g`` of the forward trajectories vs the GT frames, beside the teacher's frames, the warp-only baseline
  (input video frame ``g`` lifted with the depth the teacher used for it) and the filled warp.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from lyra.errors import ConfigError
from lyra.eval.baselines import HOLE_ALPHA, Views, filled_warp, render_views, warp_only_gaussians
from lyra.eval.groups import Table, group_metrics, mean_rows, mean_tables, view_metrics
from lyra.eval.metrics import mean_finite, psnr, ssim
from lyra.geometry import Cameras
from lyra.student import LatentDecoder
from lyra.student.inference import PRUNE_RATIO, decode_sample, decode_sample_at_time, render_sample

__all__ = ["PRUNE_RATIO", "evaluate_dynamic_fidelity", "evaluate_fidelity", "evaluate_gt", "frame_metrics"]


#: The whole-frame metrics of a fidelity run (each also suffixed ``_pruned``).
FIDELITY_KEYS = ("psnr", "ssim", "ms_ssim", "gmsd", "sharpness")


def frame_metrics(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Per-frame PSNR and SSIM of images ``[..., H, W, 3]`` in [0, 1] (flattened to ``[N]`` each)."""
    p = pred.float().clamp(0, 1).reshape(-1, *pred.shape[-3:]).permute(0, 3, 1, 2)
    t = target.float().reshape(-1, *target.shape[-3:]).permute(0, 3, 1, 2)
    return psnr(p, t), ssim(p, t)


def _unit_rgb(rgb: Tensor) -> Tensor:
    """Stored ``[V, T, H, W, 3]`` uint8 or float ``[V, T, 3, H, W]`` → float ``[V, T, H, W, 3]`` in [0, 1]."""
    if rgb.dtype == torch.uint8:
        return rgb.float() / 255.0
    return rgb.float().movedim(-3, -1) if rgb.shape[-3] == 3 and rgb.shape[-1] != 3 else rgb.float()


def _frames(T: int, stride: int, skip_first: bool = False) -> list[int]:
    frames = list(range(1 if skip_first else 0, T, max(1, stride)))
    if frames and frames[-1] != T - 1:
        frames.append(T - 1)  # always the trajectory end
    return frames


def _scenes(dataset: Any, max_scenes: int | None) -> range:
    n = len(dataset)
    return range(n if max_scenes is None else min(n, max_scenes))


def _dataset(data: str | Any, dynamic: bool | None, model: LatentDecoder | None = None, encoder: Any = None) -> Any:
    """The SDG data set of ``data`` (a folder or a data set), checked against ``dynamic`` (``None``: any) and the
    latent channels ``C`` of ``model`` (the data's ``latents``) and of ``encoder`` (the Plücker/time latents)."""
    from lyra.shards import ShardDataset

    ds = ShardDataset(data, as_float=False) if isinstance(data, (str, Path)) else data
    found = bool(getattr(ds, "dynamic", False))
    if dynamic is not None and dynamic != found:
        raise ConfigError(f"the SDG data holds {'dynamic' if found else 'static'} scenes but a "
                          f"{'dynamic' if dynamic else 'static'} student was given; evaluate it on "
                          f"{'static' if found else 'dynamic'} data")
    if model is not None:
        c = getattr(ds, "latent_channels", None)
        if c is not None and c != model.config.latent_channels:
            raise ConfigError(f"the SDG data holds {c}-channel latents, the student reads "
                              f"{model.config.latent_channels}")
        model.check_tokenizer(encoder, "the encoder given")
    return ds


def _student_views(raw: Tensor, cameras: Cameras, prune_ratio: float | None, backend: str) -> Views:
    """The student's raw Gaussians ``[N, 14]`` (pruned with ``prune_ratio``) rendered at ``cameras`` ``[V, T]``."""
    (g,) = LatentDecoder.to_gaussians(raw[None], prune_ratio)
    return render_views(g, cameras.to(raw.device), backend).cpu()


@torch.no_grad()
def evaluate_fidelity(model: LatentDecoder, data: str | Any, encoder: Any, max_scenes: int | None = 8,
                      frame_stride: int = 1, backend: str = "auto", single_view: bool = False,
                      prune_ratio: float = PRUNE_RATIO, progress: bool = True,
                      dynamic: bool | None = None) -> dict[str, Any]:
    """Student renders vs the teacher's decoded frames on held-out SDG scenes (all six trajectories).

    Args:
        model: the student (eval mode; its device is used).
        data: an SDG folder or a :class:`~lyra.shards.ShardDataset`.
        encoder: the frozen tokenizer of the SDG data.
        max_scenes: the first this many scenes (``None``: all).
        frame_stride: every ``frame_stride``-th frame of each trajectory (and always the last).
        dynamic: whether the student is dynamic (checked against the data; ``None``: as the data is).
            Dynamic data is evaluated by :func:`evaluate_dynamic_fidelity`.

    Returns:
        ``psnr``, ``ssim``, ``ms_ssim``, ``gmsd``, ``sharpness`` over all evaluated frames (all Gaussians) and the
        same suffixed ``_pruned`` (``prune_ratio`` of them dropped), ``prune_cost_db`` (= psnr − psnr_pruned),
        ``table`` (the frame groups of :mod:`lyra.eval.groups`, systems ``student`` and ``student_pruned``,
        against the teacher's frames; mean over scenes), ``scenes``, ``frames_per_scene``, ``per_scene`` lists.
    """
    ds = _dataset(data, dynamic, model, encoder)
    if ds.dynamic:
        if single_view:
            raise ConfigError("a single-view student cannot be dynamic")
        return evaluate_dynamic_fidelity(model, ds, encoder, max_scenes, frame_stride, backend, prune_ratio, progress)
    model.eval()
    rows: list[dict[str, float]] = []
    tables: list[Table] = []
    ids = []
    frames: list[int] = []
    V = 0
    for i in tqdm(_scenes(ds, max_scenes), desc="fidelity", disable=not progress):
        s = ds[i]
        target = _unit_rgb(s["rgb"]).movedim(-1, -3)  # [V, T, 3, H, W]
        V, T, _, H, W = target.shape
        frames = _frames(T, frame_stride)
        cams = Cameras(s["K"].float(), s["c2w"].float(), W, H)[:, frames]
        raw = decode_sample(model, s, encoder, single_view)
        tgt = target[:, frames]
        systems = {"student": _student_views(raw, cams, None, backend),
                   "student_pruned": _student_views(raw, cams, prune_ratio, backend)}
        row: dict[str, float] = {}
        for name, suffix in (("student", ""), ("student_pruned", "_pruned")):
            m = view_metrics(Views(systems[name].rgb.flatten(0, 1)), tgt.flatten(0, 1))
            row.update({k + suffix: m[k] for k in FIDELITY_KEYS})
        rows.append(row)
        tables.append(group_metrics(systems, tgt, frame_numbers=frames, total_frames=T))
        ids.append(s["sample_id"])
    if not ids:
        raise ConfigError("no scenes to evaluate")
    out: dict[str, Any] = mean_rows(rows)
    out["prune_cost_db"] = out["psnr"] - out["psnr_pruned"]
    out.update(scenes=len(ids), frames_per_scene=len(frames) * V, prune_ratio=prune_ratio, sample_ids=ids,
               table=mean_tables(tables), single_view=single_view,
               per_scene={k: [round(r[k], 4) for r in rows] for k in ("psnr", "ssim", "psnr_pruned", "ssim_pruned")})
    return out


def _world_preset(ds: Any) -> str:
    src = (ds.manifest.get("settings") or {}).get("source") or {}
    preset = src.get("world_preset")
    if src.get("kind") != "world" or not preset:
        raise ConfigError("the SDG data was not generated from procedural worlds (settings.source.kind != 'world'); "
                          "ground truth exists only for world scenes")
    return str(preset)


def _gt_example(seed: int, preset: str, H: int, W: int, device: torch.device,
                dynamic: bool = False) -> tuple[Tensor, Cameras, Tensor]:
    """GT videos ``[V, T, H, W, 3]``, cameras and z-depth ``[V, T, H, W]`` of world ``seed`` (a dynamic world with
    ``dynamic``), centre-cropped to ``H × W`` as the SDG does."""
    from lyra.world import make_example

    ex = make_example(seed, preset, dynamic=dynamic, device=device)
    Hf, Wf = ex.image.shape[-2:]
    if Hf < H or Wf < W:
        raise ConfigError(f"world preset {preset} renders {Wf}x{Hf}, smaller than the SDG frames {W}x{H}")
    top, left = (Hf - H) // 2, (Wf - W) // 2
    videos = ex.videos[..., top:top + H, left:left + W].permute(0, 1, 3, 4, 2)
    return videos, ex.cameras.crop(left, top, W, H), ex.depths[..., top:top + H, left:left + W]


def _cat_views(parts: list[Views]) -> Views:
    """Views ``[V, 1]`` of one frame each → ``[V, F]`` (along the frame axis)."""
    def cat(ts: list[Tensor | None]) -> Tensor | None:
        return None if ts[0] is None else torch.cat([t for t in ts if t is not None], dim=1)

    return Views(cat([v.rgb for v in parts]), cat([v.depth for v in parts]), cat([v.alpha for v in parts]))


def _gt_systems(model: LatentDecoder, s: dict[str, Any], encoder: Any, ds: Any, views: list[int], frames: list[int],
                sdg_cams: Cameras, gt_cams: Cameras, single_view: bool, prune_ratio: float | None, backend: str,
                cache: Any) -> tuple[Views, Views, Tensor]:
    """The student's and the warp-only baseline's frames ``[S, F]`` at the GT cameras ``gt_cams[:, frames]``, and
    the input image ``[3, H, W]`` (the reference of the ``input`` group). ``sdg_cams``: the sample's cameras of the
    trajectories ``views`` (``[S, T]``, what the dynamic student reads).

    Static data is the case of one time: the student decodes the sample once, and the warp lifts the input image
    with the input depth the teacher used. Dynamic data: for each frame ``g`` the student decodes the trajectories
    ``views`` at the target time ``t_g`` and renders at frame ``g`` of each trajectory, and the warp lifts input
    video frame ``g`` with the depth the teacher used for it (``input_video_depth``).
    """
    dev = next(model.parameters()).device
    if not ds.dynamic:
        image = _unit_rgb(s["image"]).movedim(-1, -3).to(dev)
        cams = gt_cams[:, frames]
        raw = decode_sample(model, s, encoder, single_view)
        warp = warp_only_gaussians(image, s["input_depth"].to(dev).float(), gt_cams[0, 0])
        return (_student_views(raw, cams, prune_ratio, backend), render_views(warp, cams, backend).cpu(),
                image.cpu())
    from lyra.student import plucker_latents
    from lyra.student.latents import raw_video_encoder

    plucker = plucker_latents(sdg_cams.to(dev).reshape(1, *sdg_cams.shape), raw_video_encoder(encoder))[0]
    video = _unit_rgb(s["input_video"]).movedim(-1, -3).to(dev)  # [T, 3, H, W]
    video_depth = s["input_video_depth"].to(dev).float()
    times = s["times"].float()
    students, warps = [], []
    for g in frames:
        raw = decode_sample_at_time(model, s, encoder, float(times[0, g]), views, plucker, cache)
        cams = gt_cams[:, g:g + 1]
        students.append(_student_views(raw, cams, prune_ratio, backend))
        warp = warp_only_gaussians(video[g], video_depth[g], gt_cams[0, 0])
        warps.append(render_views(warp, cams, backend).cpu())
    return _cat_views(students), _cat_views(warps), video[0].cpu()


@torch.no_grad()
def evaluate_gt(model: LatentDecoder, data: str | Any, encoder: Any, max_scenes: int | None = 8,
                frame_stride: int = 1, backend: str = "auto", single_view: bool = False,
                prune_ratio: float | None = PRUNE_RATIO, progress: bool = True,
                dynamic: bool | None = None) -> dict[str, Any]:
    """Student, teacher, filled warp and warp-only vs ground truth on SDG scenes made from procedural worlds,
    static or dynamic (the module doc; a static scene is the case of one time).

    The world is regenerated from the sample's world seed (a dynamic world for dynamic data). The student renders
    at the GT trajectory cameras (pruned with ``prune_ratio``, as a scene would be delivered; ``None``: all
    Gaussians) of every ``frame_stride``-th frame and the last; on dynamic data it reads the forward trajectories
    and is decoded at each frame's time ``t_g``, and the GT frames show the world at ``t_g``. The teacher's frames
    are those of the same trajectories (the forward ones on dynamic data).

    Returns ``psnr_<system>``, ``ssim_<system>`` (systems ``student``, ``teacher``, ``filled_warp``, ``warp``;
    frames ``1 … T − 1``), ``table`` (the frame groups of :mod:`lyra.eval.groups` with every metric, mean over
    scenes; depth metric as the data's depth is metric), ``scenes``, ``world_seeds``, ``max_camera_offset``
    (largest distance between the SDG's and the regenerated GT camera centres: 0 when the data matches its world),
    ``dynamic``, ``per_scene``. ``dynamic`` as in :func:`evaluate_fidelity`.
    """
    from lyra.student.latents import LatentCache

    ds = _dataset(data, dynamic, model, encoder)
    preset = _world_preset(ds)
    model.eval()
    dev = next(model.parameters()).device
    cache = LatentCache(encoder, max_entries=256) if ds.dynamic else None
    rows: list[dict[str, float]] = []
    tables: list[Table] = []
    seeds: list[int] = []
    offset = 0.0
    desc = "dynamic ground truth" if ds.dynamic else "ground truth"
    for i in tqdm(_scenes(ds, max_scenes), desc=desc, disable=not progress):
        s = ds[i]
        seed = int(s["world_seed"])
        if seed < 0:
            continue
        teacher = _unit_rgb(s["rgb"]).movedim(-1, -3)  # [V, T, 3, H, W]
        V, T, _, H, W = teacher.shape
        gt, gt_cams, gt_depth = _gt_example(seed, preset, H, W, dev, dynamic=ds.dynamic)
        views = _forward_views(ds, V) if ds.dynamic else list(range(V))
        views = views[:min(len(views), gt.shape[0])]
        S = len(views)
        gt, gt_cams, gt_depth = gt[:S].movedim(-1, -3).cpu(), gt_cams[:S], gt_depth[:S].cpu()
        frames = _frames(T, frame_stride)
        sdg_cams = Cameras(s["K"].float(), s["c2w"].float(), W, H)[views]
        offset = max(offset, float((sdg_cams.centers.to(dev) - gt_cams.centers.to(dev)).norm(dim=-1).max()))
        student, warp, image = _gt_systems(model, s, encoder, ds, views, frames, sdg_cams, gt_cams, single_view,
                                           prune_ratio, backend, cache)
        systems = {"student": student, "teacher": Views(teacher[views][:, frames]),
                   "filled_warp": filled_warp(warp), "warp": warp}
        target, depth = gt[:, frames], gt_depth[:, frames]
        novel = [j for j, f in enumerate(frames) if f > 0]
        row = {}
        for name, v in systems.items():
            m = view_metrics(Views(v.rgb[:, novel].flatten(0, 1)), target[:, novel].flatten(0, 1))
            row[f"psnr_{name}"], row[f"ssim_{name}"] = m["psnr"], m["ssim"]
        rows.append(row)
        tables.append(group_metrics(systems, target, depth, holes=warp.alpha < HOLE_ALPHA, input_image=image,
                                    frame_numbers=frames, total_frames=T))
        seeds.append(seed)
    if not seeds:
        raise ConfigError("no world scenes (with a world seed) among the evaluated samples")
    out: dict[str, Any] = mean_rows(rows)
    out.update(scenes=len(seeds), world_seeds=seeds, world_preset=preset,
               frames="1..T-1 (target time t_g at frame g)" if ds.dynamic else "1..T-1", frame_stride=frame_stride,
               student_prune_ratio=prune_ratio, max_camera_offset=offset, table=mean_tables(tables),
               dynamic=bool(ds.dynamic), per_scene={k: [round(r[k], 4) for r in rows] for k in sorted(rows[0])})
    return out


# ---------------------------------------------------------------------------------------- dynamic
def _forward_views(ds: Any, num_views: int) -> list[int]:
    """The trajectories generated from the video forward in time (what the student reads at inference)."""
    return list(range(num_views // len(getattr(ds, "directions", ["forward"]))))


@torch.no_grad()
def evaluate_dynamic_fidelity(model: LatentDecoder, data: str | Any, encoder: Any, max_scenes: int | None = 8,
                              frame_stride: int = 1, backend: str = "auto", prune_ratio: float = PRUNE_RATIO,
                              progress: bool = True) -> dict[str, Any]:
    """Dynamic student at target times vs the teacher's frames at those times (module doc).

    For each scene: the forward trajectories decoded once per target time ``τ = times[0, g]`` (``g`` every
    ``frame_stride``-th frame and the last); the Gaussians rendered at every frame showing ``τ``
    (:func:`lyra.student.dynamic.frames_at_time`, all stored trajectories) with all Gaussians and pruned.

    Returns:
        ``psnr``, ``ssim``, ``psnr_pruned``, ``ssim_pruned``, ``prune_cost_db`` (over all supervising frames),
        ``psnr_forward`` / ``psnr_reversed`` (frames of the forward / reversed trajectories; NaN without
        reversal), ``scenes``, ``target_times`` (per scene), ``frames_per_scene``, ``directions``,
        ``per_scene`` lists, ``dynamic: True``.
    """
    from lyra.student import plucker_latents
    from lyra.student.dynamic import frames_at_time
    from lyra.student.latents import LatentCache, raw_video_encoder

    ds = _dataset(data, True, model, encoder)
    model.eval()
    dev = next(model.parameters()).device
    keys = ("psnr", "ssim", "psnr_pruned", "ssim_pruned", "psnr_forward", "psnr_reversed")
    per: dict[str, list[float]] = {k: [] for k in keys}
    ids: list[str] = []
    cache = LatentCache(encoder, max_entries=256)
    n_frames = n_taus = 0
    for i in tqdm(_scenes(ds, max_scenes), desc="dynamic fidelity", disable=not progress):
        s = ds[i]
        target = _unit_rgb(s["rgb"])
        V, T, H, W = target.shape[:4]
        fwd = _forward_views(ds, V)
        cams = Cameras(s["K"].float(), s["c2w"].float(), W, H)
        pl = plucker_latents(cams[fwd].to(dev).reshape(1, len(fwd), T), raw_video_encoder(encoder))[0]
        times = s["times"].float()
        acc: dict[str, list[Tensor]] = {k: [] for k in keys}
        taus = _frames(T, frame_stride)
        for g in taus:
            tau = float(times[0, g])
            raw = decode_sample_at_time(model, s, encoder, tau, fwd, pl, cache)
            u, f = frames_at_time(times, tau)
            tgt = target[u, f].to(raw.device)
            for suffix, ratio in (("", None), ("_pruned", prune_ratio)):
                p, q = frame_metrics(render_sample(raw, cams[u, f], ratio, backend), tgt)
                acc["psnr" + suffix].append(p)
                acc["ssim" + suffix].append(q)
                if not suffix:
                    rev = (u >= len(fwd)).to(p.device)
                    acc["psnr_forward"].append(p[~rev])
                    acc["psnr_reversed"].append(p[rev])
            n_frames = len(u)
        for k in keys:
            v = torch.cat(acc[k]) if acc[k] else torch.zeros(0)
            per[k].append(mean_finite(v) if k.startswith("psnr") else float(v.mean()))
        n_taus = len(taus)
        ids.append(s["sample_id"])
    if not ids:
        raise ConfigError("no scenes to evaluate")
    out: dict[str, Any] = {k: sum(v) / len(v) for k, v in per.items()}
    out["prune_cost_db"] = out["psnr"] - out["psnr_pruned"]
    out.update(scenes=len(ids), target_times=n_taus, frames_per_target_time=n_frames,
               frames_per_scene=n_frames * n_taus, prune_ratio=prune_ratio, sample_ids=ids,
               directions=list(getattr(ds, "directions", ["forward"])), dynamic=True,
               per_scene={k: [round(x, 4) for x in v] for k, v in per.items()})
    return out
