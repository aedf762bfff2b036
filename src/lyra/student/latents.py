"""The tokenizer as the student's conditioning needs it, and the one cache of its latents.

* :class:`RawVideoEncoder` / :func:`raw_video_encoder` — a :class:`lyra.tokenizer.Tokenizer` seen as a
  :class:`~lyra.student.decoder.VideoEncoder` that encodes videos as they are (``encode_raw``, no rescaling):
  what :func:`~lyra.student.decoder.plucker_latents` and :func:`~lyra.student.decoder.time_latents` want.
* :class:`LatentCache` — least-recently-used cache of conditioning latents (fp16 on the CPU): Plücker latents
  per sample id (:meth:`LatentCache.plucker`) and time-video latents per distinct time row
  (:meth:`LatentCache.time_video`, :meth:`~LatentCache.source`, :meth:`~LatentCache.target`). The fp16 values
  are what the decoder reads, cached or not: the cache changes no value.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import Tensor

from lyra.geometry.cameras import Cameras
from lyra.student.decoder import plucker_latents, time_latents

__all__ = ["LatentCache", "RawVideoEncoder", "raw_video_encoder"]


class RawVideoEncoder:
    """The tokenizer as :func:`lyra.student.plucker_latents` wants it: ``encode([B, 3, T, H, W])`` of a video
    already in the model's range, without rescaling (:meth:`lyra.tokenizer.Tokenizer.encode_raw`)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    @property
    def device(self) -> torch.device:
        return self.tokenizer.device

    @property
    def latent_channels(self) -> int:
        """``C``: the tokenizer's latent channels (Plücker latents have ``2C``)."""
        return int(self.tokenizer.latent_channels)

    def encode(self, video: Tensor) -> Tensor:
        return self.tokenizer.encode_raw(video)


def raw_video_encoder(encoder: Any) -> Any:
    """``encoder`` as the time/Plücker paths need it: a :class:`~lyra.tokenizer.Tokenizer` is wrapped so that
    ``encode([B, 3, T, H, W])`` takes the video as it is (``encode_raw``); anything else is returned as is."""
    return RawVideoEncoder(encoder) if hasattr(encoder, "encode_raw") else encoder


class LatentCache:
    """Conditioning latents computed with the frozen tokenizer, kept in fp16 on the CPU; the least recently used
    entries beyond ``max_entries`` are dropped (0: no caching). ``hits``, ``misses`` and ``stored_hits`` count
    the look-ups.

    ``encoder``: a :class:`lyra.tokenizer.Tokenizer` (its ``encode_raw`` is used) or any object whose
    ``encode([B, 3, T, H, W])`` takes the videos as they are.
    """

    def __init__(self, encoder: Any, max_entries: int = 4096) -> None:
        self.encoder = raw_video_encoder(encoder)
        self.max_entries = max_entries
        self._store: collections.OrderedDict[Hashable, Tensor] = collections.OrderedDict()
        self.hits = self.misses = self.stored_hits = 0

    def _lookup(self, key: Hashable, compute: Callable[[], Tensor]) -> Tensor:
        held = self._store.get(key)
        if held is not None:
            self._store.move_to_end(key)
            self.hits += 1
            return held
        self.misses += 1
        out = compute().to("cpu", torch.float16)
        if self.max_entries > 0:
            self._store[key] = out
            while len(self._store) > self.max_entries:
                self._store.popitem(last=False)
        return out

    def plucker(self, sample_id: str, cameras: Cameras, stored: Tensor | None = None) -> Tensor:
        """Plücker latents of ``cameras`` ``[V, T]`` (all the sample's frames) → fp16 ``[V, 2C, t, h, w]`` on
        the CPU, cached per ``sample_id``. ``stored``: the latents an SDG stored with the sample (``lyra sdg
        --store-plucker``), used as they are (counted in ``stored_hits``)."""
        if stored is not None:
            self.stored_hits += 1
            return stored.to("cpu", torch.float16)
        dev = getattr(self.encoder, "device", cameras.device)
        return self._lookup(("plucker", sample_id), lambda: plucker_latents(
            cameras.to(dev).reshape(1, *cameras.shape), self.encoder)[0])

    def time_video(self, times: Tensor, height: int, width: int) -> Tensor:
        """Latents ``[C, t, h, w]`` (fp16, CPU) of the time video of ``times`` ``[T]`` at ``height × width``,
        cached per distinct time row."""
        row = times.detach().float().cpu().reshape(-1)
        key = ("time", height, width, tuple(round(float(x), 6) for x in row))
        dev = getattr(self.encoder, "device", torch.device("cpu"))
        return self._lookup(key, lambda: time_latents(row[None].to(dev), self.encoder, height, width)[0])

    def source(self, times: Tensor, height: int, width: int) -> Tensor:
        """Source-time latents ``[B, V, C, t, h, w]`` (fp16, CPU) of frame times ``times`` ``[B, V, T]``."""
        if times.ndim != 3:
            raise ValueError(f"source times must be [B, V, T], got {tuple(times.shape)}")
        B, V, _ = times.shape
        rows = [self.time_video(times[b, v], height, width) for b in range(B) for v in range(V)]
        return torch.stack(rows).reshape(B, V, *rows[0].shape)

    def target(self, target: Tensor, num_frames: int, height: int, width: int) -> Tensor:
        """Target-time latents ``[B, 1, C, t, h, w]`` (fp16, CPU) of target times ``target`` ``[B]`` (each a
        ``num_frames``-frame video of one constant time)."""
        tgt = target.detach().float().cpu().reshape(-1)
        rows = [self.time_video(torch.full((num_frames,), float(x)), height, width) for x in tgt]
        return torch.stack(rows)[:, None]
