"""Student inference: teacher latents + cameras → raw Gaussians, and rendering them.

* :func:`decode_sample` — one static SDG-shaped sample (latents ``[V, 16, t, h, w]``, cameras ``K``/``c2w``
  ``[V, T, ...]``) → raw Gaussians ``[N, 14]``;
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
from lyra.student.decoder import LatentDecoder

__all__ = ["PRUNE_RATIO", "decode_sample", "decode_sample_at_time", "render_sample"]

#: Fraction of the Gaussians (lowest opacity) dropped when a scene is delivered (Lyra's 80 % pruning).
PRUNE_RATIO = 0.8


@torch.no_grad()
def decode_sample(model: LatentDecoder, sample: dict[str, Any], encoder: Any, single_view: bool = False,
                  plucker: Tensor | None = None) -> Tensor:
    """Raw Gaussians ``[N, 14]`` of one SDG sample (all its trajectories), decoded on the model's device.

    ``sample``: a :class:`~lyra.distill.shards.ShardDataset` item (either dtype layout). ``encoder``: the frozen
    tokenizer (for the Plücker latents) unless ``plucker`` ``[V, 32, t, h, w]`` is given.
    """
    from lyra.distill.train import RawVideoEncoder
    from lyra.student import plucker_latents

    dev = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    lat = sample["latents"].to(dev, dtype)[None]
    V = lat.shape[1]
    H, W = sample["depth"].shape[-2:]
    cams = Cameras(sample["K"].float(), sample["c2w"].float(), W, H).to(dev)
    if plucker is None:
        enc = RawVideoEncoder(encoder) if hasattr(encoder, "encode_raw") else encoder
        plucker = plucker_latents(cams.reshape(1, *cams.shape), enc)[0]
    pl = plucker.to(dev, dtype)[None]
    if single_view:
        raw = model(lat.reshape(V, 1, *lat.shape[2:]), cams.reshape(V, 1, cams.shape[-1]),
                    pl.reshape(V, 1, *pl.shape[2:]))
        return raw.reshape(-1, raw.shape[-1]).float()
    return model(lat, cams.reshape(1, *cams.shape), pl)[0].float()


@torch.no_grad()
def decode_sample_at_time(model: LatentDecoder, sample: dict[str, Any], encoder: Any, target_time: float,
                          views: Sequence[int] | None = None, plucker: Tensor | None = None,
                          cache: Any = None) -> Tensor:
    """Raw Gaussians ``[N, 14]`` of a dynamic SDG sample at ``target_time``, decoded from its trajectories
    ``views`` (default: the forward ones — the first ``V / len(directions)``; here: all unless given) with their
    source times (:func:`lyra.student.dynamic.decode_at_time`).

    ``plucker``: ``[len(views), 32, t, h, w]`` if already computed; ``cache``: a
    :class:`~lyra.student.dynamic.TimeLatentCache`.
    """
    from lyra.student import plucker_latents
    from lyra.student.dynamic import decode_at_time, raw_video_encoder

    dev = next(model.parameters()).device
    sel = list(range(sample["latents"].shape[0])) if views is None else list(views)
    lat = sample["latents"][sel].to(dev).float()[None]
    H, W = sample["depth"].shape[-2:]
    cams = Cameras(sample["K"][sel].float(), sample["c2w"][sel].float(), W, H).to(dev)
    if plucker is None:
        plucker = plucker_latents(cams.reshape(1, *cams.shape), raw_video_encoder(encoder))[0]
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
