"""Student inference: teacher latents + cameras → raw Gaussians, and rendering them.

* :func:`decode` — the teacher's latents ``[V, C, t, h, w]`` of a static scene, their cameras ``[V, T]`` and
  Plücker latents (:func:`plucker_of`) → raw Gaussians ``[N, 14]`` (what the product runs);
* :func:`decode_sample` — the same for one SDG sample (a :class:`~lyra.shards.ShardDataset` item);
* :func:`decode_sample_at_time` — the same for a dynamic sample at one target time;
* :func:`render_sample` — raw Gaussians rendered at cameras (optionally pruned).

:data:`PRUNE_RATIO` is the fraction of Gaussians dropped (lowest opacity) when a scene is delivered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from lyra.geometry import Cameras
from lyra.student.decoder import LatentDecoder, plucker_latents
from lyra.student.latents import raw_video_encoder

__all__ = ["PRUNE_RATIO", "decode", "decode_sample", "decode_sample_at_time", "plucker_of", "render_sample"]

#: Fraction of the Gaussians (lowest opacity) dropped when a scene is delivered (Lyra's 80 % pruning).
PRUNE_RATIO = 0.8


@torch.no_grad()
def decode(model: LatentDecoder, latents: Tensor, cameras: Cameras, plucker: Tensor,
           single_view: bool = False) -> Tensor:
    """Raw Gaussians ``[N, 14]`` (float32) of one static scene, decoded on the model's device.

    Args:
        model: the student (eval mode).
        latents: the teacher's raw latents ``[V, C, t, h, w]`` of the ``V`` trajectories.
        cameras: ``Cameras [V, T]`` of their frames (OpenCV, camera-to-world; intrinsics in pixels of the
            ``8w × 8h`` frames), ``T = 1 + 8(t − 1)``.
        plucker: their Plücker latents ``[V, 2C, t, h, w]`` (:func:`plucker_of`).
        single_view: decode each trajectory alone and merge the Gaussians (a student trained so).

    Returns:
        raw ``[N, 14]``, ``N = V·T·h·w`` (:meth:`LatentDecoder.to_gaussians` makes ``Gaussians``).
    """
    dev = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    lat = latents.to(dev, dtype)[None]
    V = lat.shape[1]
    cams = cameras.to(dev)
    pl = plucker.to(dev, dtype)[None]
    if single_view:
        raw = model(lat.reshape(V, 1, *lat.shape[2:]), cams.reshape(V, 1, cams.shape[-1]),
                    pl.reshape(V, 1, *pl.shape[2:]))
        return raw.reshape(-1, raw.shape[-1]).float()
    return model(lat, cams.reshape(1, *cams.shape), pl)[0].float()


def plucker_of(cameras: Cameras, encoder: Any) -> Tensor:
    """Plücker latents ``[V, 2C, t, h, w]`` of ``cameras`` ``[V, T]`` (on the cameras' device), encoded by the
    frozen tokenizer ``encoder`` (:func:`~lyra.student.latents.raw_video_encoder`)."""
    return plucker_latents(cameras.reshape(1, *cameras.shape), raw_video_encoder(encoder))[0]


def _sample_cameras(sample: dict[str, Any], sel: Any = slice(None)) -> Cameras:
    H, W = sample["depth"].shape[-2:]
    return Cameras(sample["K"][sel].float(), sample["c2w"][sel].float(), W, H)


@torch.no_grad()
def decode_sample(model: LatentDecoder, sample: dict[str, Any], encoder: Any, single_view: bool = False,
                  plucker: Tensor | None = None) -> Tensor:
    """:func:`decode` of one SDG sample (all its trajectories): raw Gaussians ``[N, 14]`` on the model's device.

    ``sample``: a :class:`~lyra.shards.ShardDataset` item (either dtype layout). ``encoder``: the frozen
    tokenizer (for the Plücker latents) unless ``plucker`` ``[V, 2C, t, h, w]`` is given.
    """
    dev = next(model.parameters()).device
    cams = _sample_cameras(sample).to(dev)
    if plucker is None:
        plucker = plucker_of(cams, encoder)
    return decode(model, sample["latents"], cams, plucker, single_view)


@torch.no_grad()
def decode_sample_at_time(model: LatentDecoder, sample: dict[str, Any], encoder: Any, target_time: float,
                          views: Sequence[int] | None = None, plucker: Tensor | None = None,
                          cache: Any = None) -> Tensor:
    """Raw Gaussians ``[N, 14]`` of a dynamic SDG sample at ``target_time``, decoded from its trajectories
    ``views`` (default: the forward ones — the first ``V / len(directions)``; here: all unless given) with their
    source times (:func:`lyra.student.dynamic.decode_at_time`).

    ``plucker``: ``[len(views), 2C, t, h, w]`` if already computed; ``cache``: a
    :class:`~lyra.student.latents.LatentCache`.
    """
    from lyra.student.dynamic import decode_at_time

    dev = next(model.parameters()).device
    sel = list(range(sample["latents"].shape[0])) if views is None else list(views)
    lat = sample["latents"][sel].to(dev).float()[None]
    cams = _sample_cameras(sample, sel).to(dev)
    if plucker is None:
        plucker = plucker_of(cams, encoder)
    times = sample["times"][sel].float()[None]
    return decode_at_time(model, lat, cams.reshape(1, *cams.shape), plucker[None].to(dev), times, target_time,
                          encoder, cache)[0].float()


@torch.no_grad()
def render_sample(raw: Tensor, cameras: Cameras, prune_ratio: float | None = None, backend: str = "auto",
                  background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Tensor:
    """Render raw Gaussians ``[N, 14]`` at ``cameras`` (any batch shape ``[...]``) → RGB ``[..., H, W, 3]``."""
    from lyra.render import render

    (g,) = LatentDecoder.to_gaussians(raw[None], prune_ratio)
    cams = cameras.to(raw.device)
    out = []
    flat = cams.flatten()
    for i in range(0, flat.shape[0], 16):  # bounded memory on the torch backend
        out.append(render(g, flat[i:i + 16], background=background, backend=backend).rgb)
    return torch.cat(out).reshape(*cameras.shape, cameras.height, cameras.width, 3)
