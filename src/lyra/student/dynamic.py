"""The dynamic student: the decoder's Gaussians of a dynamic scene at a chosen *target time*.

Lyra's dynamic decoder is the static one plus two time inputs (LYRA_FACTS, "Dynamic"), each a time video
``(τ, cos τ, sin τ)`` broadcast over the image, mapped to the tokenizer's range as ``2x − 1``, encoded by the
frozen tokenizer (:func:`lyra.student.decoder.time_latents`) and patch-embedded by its own zero-initialised
embedding:

* **source time** (``patch_time_embed``): per view, the video of the times of that view's frames — frame
  ``f`` of a trajectory of a dynamic scene shows time ``t_f``, so view ``v``'s source video is
  ``times[v, 0], …, times[v, T − 1]``;
* **target time** (``patch_time_embed_tgt``): one time ``τ`` for the whole scene — the video whose every frame
  is ``τ`` (``T`` frames, so its latents have the source latents' ``t`` frames), shared by all views.

Given the latents of all trajectories with their source times and a target time ``τ``, *every* Gaussian the
decoder outputs (pixel-aligned to every frame of every view, as in the static model) is placed where the scene
is at time ``τ``: the output is the 3D scene at ``τ``. Rendering it into the camera of any frame that shows
time ``τ`` must reproduce that frame (:func:`frames_at_time` finds them) — that is how it is trained
(:mod:`lyra.train.recipes.student`, ``--dynamic``) and evaluated (:mod:`lyra.eval.student_benchmark`).

The time videos are encoded once per distinct time row and cached (:class:`~lyra.student.latents.LatentCache`):
a data set has few distinct rows (forward and reversed frame times; one constant row per target time).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lyra.errors import ConfigError
from lyra.geometry.cameras import Cameras
from lyra.student.decoder import LatentDecoder, time_latents
from lyra.student.latents import LatentCache, raw_video_encoder

__all__ = ["TIME_ATOL", "decode_at_time", "frames_at_time", "source_time_latents", "target_time_latents"]

#: Two frame times closer than this are the same time (frame times are ``f / (T − 1)``: ≥ 1/120 apart).
TIME_ATOL = 1e-4


def source_time_latents(times: Tensor, encoder: Any, height: int, width: int) -> Tensor:
    """Source-time latents ``[B, V, C, t, h, w]`` of frame times ``times`` ``[B, V, T]`` in [0, 1] (no cache;
    float32 on the encoder's device)."""
    if times.ndim != 3:
        raise ValueError(f"source times must be [B, V, T], got {tuple(times.shape)}")
    B, V, T = times.shape
    enc = raw_video_encoder(encoder)
    out = time_latents(times.reshape(B * V, T).float(), enc, height, width)
    return out.reshape(B, V, *out.shape[1:])


def target_time_latents(target: Tensor | float, num_frames: int, encoder: Any, height: int, width: int,
                        batch: int = 1) -> Tensor:
    """Target-time latents ``[B, 1, C, t, h, w]``: the ``num_frames``-frame video of the constant time
    ``target`` (a float, or ``[B]``; a float is repeated ``batch`` times)."""
    tgt = torch.as_tensor(target, dtype=torch.float32).reshape(-1)
    if tgt.numel() == 1 and batch > 1:
        tgt = tgt.expand(batch)
    enc = raw_video_encoder(encoder)
    return time_latents(tgt[:, None].expand(-1, num_frames).contiguous(), enc, height, width)[:, None]


def frames_at_time(times: Tensor, target: float, atol: float = TIME_ATOL) -> tuple[Tensor, Tensor]:
    """The frames that show time ``target``: ``(views [K], frames [K])`` (long) such that
    ``times[views[k], frames[k]]`` equals ``target`` (within ``atol``), at most one frame per view (the
    nearest), views in order. ``times`` ``[V, T]``: the time of every frame of every trajectory.

    For a dynamic SDG sample with motion reversal (12 trajectories, ``times[v] = t`` for the forward six and
    ``times[6 + v] = t`` flipped for the reversed six) and ``target = t_g``, these are frame ``g`` of the six
    forward trajectories and frame ``T − 1 − g`` of the six reversed ones: twelve views of the scene at ``t_g``.
    """
    if times.ndim != 2:
        raise ValueError(f"times must be [V, T], got {tuple(times.shape)}")
    err = (times.float() - float(target)).abs()
    best, frames = err.min(dim=1)
    views = torch.nonzero(best <= atol, as_tuple=True)[0]
    return views, frames[views]


@torch.no_grad()
def decode_at_time(model: LatentDecoder, latents: Tensor, cameras: Cameras, plucker: Tensor, times: Tensor,
                   target_time: Tensor | float, encoder: Any, cache: LatentCache | None = None) -> Tensor:
    """Raw Gaussians ``[B, N, 14]`` of a dynamic scene at ``target_time`` (the product's dynamic decode).

    Args:
        model: the dynamic student (a :class:`LatentDecoder` with time embeddings), eval mode.
        latents: raw tokenizer latents ``[B, V, C, t, h, w]`` of the trajectories.
        cameras: ``Cameras [B, V, T]`` of their frames (OpenCV, c2w), ``T = 1 + 8(t − 1)``, image size ``8w × 8h``.
        plucker: Plücker latents ``[B, V, 2C, t, h, w]`` (:func:`lyra.student.plucker_latents`).
        times: ``[B, V, T]`` the time in [0, 1] of every frame (e.g. ``TeacherOutput.frame_times``).
        target_time: the time of the scene to output: a float or ``[B]``.
        encoder: the frozen tokenizer (encodes the time videos).
        cache: optional :class:`~lyra.student.latents.LatentCache` (repeated calls on one scene re-use the source
            latents).

    Returns:
        raw ``[B, N, 14]`` (:meth:`LatentDecoder.to_gaussians` makes ``Gaussians``), ``N = V·T·h·w``, the scene
        at ``target_time``: render it at any camera.
    """
    B, V, _, t, h, w = latents.shape
    T = model.frames_per_view(t)
    if tuple(times.shape) != (B, V, T):
        raise ValueError(f"times must be [B, V, T] = [{B}, {V}, {T}], got {tuple(times.shape)}")
    H, W = 8 * h, 8 * w
    dev = latents.device
    dtype = next(model.parameters()).dtype
    tgt = torch.as_tensor(target_time, dtype=torch.float32).reshape(-1)
    tgt = tgt.expand(B) if tgt.numel() == 1 else tgt
    if tgt.numel() != B or bool(((tgt < 0) | (tgt > 1)).any()):
        raise ConfigError(f"target_time must be one time or [B] times in [0, 1], got {tgt.tolist()}")
    if cache is not None:
        src, tgl = cache.source(times, H, W), cache.target(tgt, T, H, W)
    else:
        src, tgl = source_time_latents(times, encoder, H, W), target_time_latents(tgt, T, encoder, H, W)
    return model(latents.to(dtype), cameras, plucker.to(dev, dtype), src.to(dev, dtype), tgl.to(dev, dtype))
