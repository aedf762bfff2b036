"""GEN3C-style conditions for the teacher: warp the input view along trajectories, encode the result.

GEN3C renders its 3D cache into every target camera and feeds the diffusion transformer the
tokenizer latents of those renders together with (encoded) validity masks. Here the warped RGB videos
go through the same :class:`~lyra.tokenizer.Tokenizer` as the targets (and are normalised the same
way), and the validity mask is brought to the latent grid by **average pooling** instead of being
encoded: each latent cell gets the fraction of valid pixels in the block of video it summarises.
The tokenizer is causal in time (latent frame 0 = video frame 0 alone, latent frame ``k ≥ 1`` = video
frames ``8k−7 … 8k``) and compresses space 8 × 8, so the pooling uses exactly those blocks. This is
cheap, exact in what it measures (coverage) and needs no extra tokenizer pass.

Dynamic scenes (:func:`warp_conditions_dynamic`): the input is a monocular video, frame ``f`` at time ``t_f``
with its own depth and camera. Frame ``f`` of every trajectory shows the scene at ``t_f``, so it is the
forward-warp of *input frame* ``f``'s point cache (not frame 0's) into trajectory camera ``f``: a moving object
appears in each trajectory frame where it is at that frame's time. Encoding and mask pooling are shared with
the static case.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.errors import ConfigError
from lyra.geometry.cameras import Cameras
from lyra.teacher.cache3d import PointCache, warp
from lyra.tokenizer.tokenizer import SPATIAL_COMPRESSION, TEMPORAL_COMPRESSION, Tokenizer, latent_frames

__all__ = ["Conditions", "composite_frames", "encode_warped", "fill_warp_holes", "mask_to_latent_grid",
           "warp_conditions", "warp_conditions_dynamic"]


@dataclass
class Conditions:
    """What the teacher's denoiser is conditioned on, for ``V`` trajectories.

    Attributes:
        latents: ``[V, C, t, h, w]`` normalised tokenizer latents of the warped videos.
        mask_latents: ``[V, 1, t, h, w]`` in ``[0, 1]``, fraction of valid warped pixels per latent cell.
        rgb: ``[V, T, 3, H, W]`` the warped videos in ``[0, 1]`` (0 where invalid), for visualisation;
            may be ``None`` when the conditions were built from latents directly.
        mask: ``[V, T, H, W]`` bool validity of the warped pixels, or ``None``.
    """

    latents: Tensor
    mask_latents: Tensor
    rgb: Tensor | None = None
    mask: Tensor | None = None

    def __post_init__(self) -> None:
        if self.latents.dim() != 5 or self.mask_latents.dim() != 5:
            raise ValueError(f"conditions need 5-D latents, got {tuple(self.latents.shape)} and "
                              f"{tuple(self.mask_latents.shape)}")
        V, _, t, h, w = self.latents.shape
        if tuple(self.mask_latents.shape) != (V, 1, t, h, w):
            raise ValueError(f"mask_latents must be [{V}, 1, {t}, {h}, {w}], got {tuple(self.mask_latents.shape)}")

    def __len__(self) -> int:
        return self.latents.shape[0]

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Conditions:
        def mv(x: Tensor | None, cast: bool) -> Tensor | None:
            if x is None:
                return None
            return x.to(device=device, dtype=dtype) if cast and dtype is not None else x.to(device)

        return Conditions(mv(self.latents, True), mv(self.mask_latents, True),
                          mv(self.rgb, False), mv(self.mask, False))

    def __getitem__(self, index: slice | Tensor | int) -> Conditions:
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Conditions(self.latents[index], self.mask_latents[index],
                          None if self.rgb is None else self.rgb[index],
                          None if self.mask is None else self.mask[index])


def mask_to_latent_grid(mask: Tensor) -> Tensor:
    """Validity masks ``[V, T, H, W]`` (bool or float) → ``[V, 1, t, ⌈H/8⌉, ⌈W/8⌉]`` coverage in [0, 1].

    Causal in time like the tokenizer: latent frame 0 averages video frame 0 alone, latent frame
    ``k ≥ 1`` averages video frames ``8k−7 … 8k``; space is averaged over 8 × 8 blocks. Pixels padded
    to reach a multiple of 8 count as invalid (the tokenizer pads them too).
    """
    if mask.dim() != 4:
        raise ValueError(f"mask must be [V, T, H, W], got {tuple(mask.shape)}")
    V, T, H, W = mask.shape
    t = latent_frames(T)
    m = mask.to(torch.float32)
    s = SPATIAL_COMPRESSION
    m = F.pad(m, (0, (-W) % s, 0, (-H) % s))
    first = m[:, :1]
    rest = m[:, 1:]
    frames = [first]
    if t > 1:
        frames.append(rest.reshape(V, t - 1, TEMPORAL_COMPRESSION, *m.shape[-2:]).mean(dim=2))
    m = torch.cat(frames, dim=1)  # [V, t, H', W']
    return F.avg_pool2d(m, s)[:, None]  # [V, 1, t, h, w]


@torch.no_grad()
def warp_conditions(
    image: Tensor,
    depth: Tensor,
    input_camera: Cameras,
    trajectory_cameras: Cameras,
    tokenizer: Tokenizer,
    *,
    trajectory_batch: int | None = None,
    store_device: torch.device | str | None = None,
    fill: bool = False,
    **warp_kwargs,
) -> Conditions:
    """Lift ``image`` to a point cache, warp it along every trajectory and encode the warped videos.

    Args:
        image: ``[3, H, W]`` in ``[0, 1]``.
        depth: ``[H, W]`` z-depth of ``image`` (world units, OpenCV camera).
        input_camera: the input view's camera, batch shape ``[]``, size ``W × H``.
        trajectory_cameras: ``[V, T]`` cameras (``T = 1 + 8k`` frames, any image size).
        tokenizer: encodes the warped videos (its latent statistics normalise them).
        trajectory_batch: warp and encode this many trajectories at a time (``None``: all at once). The
            cache is built once; the results are the same (up to the float rounding of other batch sizes).
        store_device: where the warped ``rgb`` / ``mask`` videos are kept (e.g. the CPU, to free the GPU
            between trajectories; ``None``: where they were made). The latents stay on the tokenizer's device.
        fill: encode the warped videos with their holes filled (:func:`encode_warped`): what a teacher whose
            ``fills_holes`` is true reads.
        **warp_kwargs: passed to :func:`lyra.teacher.cache3d.warp`.

    Returns:
        :class:`Conditions` with latents ``[V, C, t, h, w]``, mask latents ``[V, 1, t, h, w]`` and the
        warped ``rgb [V, T, 3, H', W']`` / ``mask [V, T, H', W']``.
    """
    if len(trajectory_cameras.shape) != 2:
        raise ValueError(f"trajectory cameras must have batch shape [V, T], got {tuple(trajectory_cameras.shape)}")
    latent_frames(trajectory_cameras.shape[1])
    if trajectory_batch is not None and trajectory_batch < 1:
        raise ConfigError(f"trajectory_batch must be >= 1 or None, got {trajectory_batch}")
    cache = PointCache.from_depth(image, depth, input_camera)
    V = trajectory_cameras.shape[0]
    step = V if trajectory_batch is None else trajectory_batch
    parts: list[Conditions] = []
    for a in range(0, V, step):
        out = warp(cache, trajectory_cameras[a:a + step].to(cache.device), **warp_kwargs)
        cond = encode_warped(out.rgb, out.mask, tokenizer, fill)
        del out
        if store_device is not None:
            cond = Conditions(cond.latents, cond.mask_latents, cond.rgb.to(store_device), cond.mask.to(store_device))
        parts.append(cond)
    if len(parts) == 1:
        return parts[0]
    return Conditions(*(torch.cat([getattr(c, k) for c in parts]) for k in ("latents", "mask_latents", "rgb", "mask")))


def fill_warp_holes(rgb: Tensor, mask: Tensor) -> Tensor:
    """The warp's holes filled by push-pull: ``rgb [..., 3, H, W]``, ``mask [..., H, W]`` (bool) → ``[..., 3, H, W]``.

    Push: halve the resolution until one pixel is left, each coarse pixel the mean of its valid children (valid when
    any child is). Pull: from the coarsest level up, every invalid pixel takes the bilinear upsampling of the level
    below it. Valid pixels are returned unchanged; a hole becomes a smooth continuation of its rim, and a crack of a
    few pixels (a depth edge even at the input camera) the colour around it. Cost: a few full-size passes per frame,
    unlike iterative diffusion (:func:`lyra.eval.baselines.fill_holes`), whose cost grows with the hole's width.
    Frames with no valid pixel come back black.
    """
    shape = rgb.shape
    x = rgb.reshape(-1, *shape[-3:]).float()
    m = mask.reshape(-1, 1, *shape[-2:]).to(x.dtype)
    levels = [(x, m)]
    while max(levels[-1][0].shape[-2:]) > 1:
        px, pm = levels[-1]
        k = tuple(2 if n > 1 else 1 for n in px.shape[-2:])
        wsum = F.avg_pool2d(px * pm, k, ceil_mode=True)
        msum = F.avg_pool2d(pm, k, ceil_mode=True)
        levels.append((wsum / msum.clamp_min(1e-8), (msum > 0).to(x.dtype)))
    filled = levels[-1][0] * levels[-1][1]
    for px, pm in reversed(levels[:-1]):
        up = F.interpolate(filled, size=px.shape[-2:], mode="bilinear", align_corners=False)
        filled = torch.where(pm > 0, px, up)
    return filled.reshape(shape).to(rgb.dtype)


@torch.no_grad()
def encode_warped(rgb: Tensor, mask: Tensor, tokenizer: Tokenizer, fill: bool = False) -> Conditions:
    """Warped videos ``rgb [V, T, 3, H, W]`` (clamped to [0, 1] here) and validity ``mask [V, T, H, W]`` →
    :class:`Conditions` (normalised tokenizer latents, mask pooled to the latent grid, the videos kept).

    ``fill``: encode the videos with their holes filled (:func:`fill_warp_holes`) instead of black there, for a
    teacher anchored on the filled warp (:attr:`lyra.teacher.denoiser.TeacherDenoiser.fills_holes`); the kept
    ``rgb`` stays the warp itself (black holes), as composites and metrics need it."""
    rgb = rgb.clamp(0.0, 1.0)
    latents = tokenizer.normalize(tokenizer.encode(fill_warp_holes(rgb, mask) if fill else rgb))
    mask_latents = mask_to_latent_grid(mask).to(latents.device)
    return Conditions(latents, mask_latents, rgb, mask)


@torch.no_grad()
def warp_conditions_dynamic(
    video: Tensor,
    depths: Tensor,
    input_cameras: Cameras,
    trajectory_cameras: Cameras,
    tokenizer: Tokenizer,
    fill: bool = False,
    **warp_kwargs,
) -> Conditions:
    """Dynamic 3D cache: frame ``f`` of every trajectory is input frame ``f`` lifted with its own depth and camera
    and warped into trajectory camera ``f``; the warped videos are encoded as in :func:`warp_conditions`.

    Args:
        video: ``[T, 3, H, W]`` the input video in ``[0, 1]`` (frame ``f`` at time ``t_f``).
        depths: ``[T, H, W]`` z-depth of every input frame (world units, OpenCV cameras; ``inf`` = sky).
        input_cameras: ``Cameras [T]`` the camera of every input frame (size ``W × H``; a static camera repeats
            one pose).
        trajectory_cameras: ``Cameras [V, T]`` (``T = 1 + 8k``, the video's frame count; any image size).
        tokenizer: encodes the warped videos.
        fill: encode them with their holes filled, as in :func:`warp_conditions`.
        **warp_kwargs: passed to :func:`lyra.teacher.cache3d.warp`.

    Returns:
        :class:`Conditions` with latents ``[V, C, t, h, w]``, mask latents ``[V, 1, t, h, w]`` and the warped
        ``rgb [V, T, 3, H', W']`` / ``mask [V, T, H', W']``.
    """
    if len(trajectory_cameras.shape) != 2:
        raise ValueError(f"trajectory cameras must have batch shape [V, T], got {tuple(trajectory_cameras.shape)}")
    V, T = trajectory_cameras.shape
    latent_frames(T)
    if video.dim() != 4 or video.shape[0] != T or video.shape[1] != 3:
        raise ValueError(f"the input video must be [T, 3, H, W] with T = {T} (the trajectories' frames), "
                          f"got {tuple(video.shape)}")
    if tuple(depths.shape) != (T, *video.shape[-2:]):
        raise ValueError(f"per-frame depth must be [{T}, {video.shape[-2]}, {video.shape[-1]}], "
                          f"got {tuple(depths.shape)}")
    if tuple(input_cameras.shape) != (T,):
        raise ValueError(f"input cameras must have batch shape [{T}] (one per video frame), "
                          f"got {tuple(input_cameras.shape)}")
    rgbs, masks = [], []
    for f in range(T):
        cache = PointCache.from_depth(video[f], depths[f], input_cameras[f])
        out = warp(cache, trajectory_cameras[:, f].to(cache.device), **warp_kwargs)  # [V, 3, H', W'], [V, H', W']
        rgbs.append(out.rgb)
        masks.append(out.mask)
    return encode_warped(torch.stack(rgbs, 1), torch.stack(masks, 1), tokenizer, fill)


def composite_frames(videos: Tensor, warped: Tensor | None, mask: Tensor | None) -> Tensor:
    """The warped input where the warp has data, ``videos`` elsewhere: ``[V, T, 3, H, W]`` (CPU, float).

    ``warped`` ``[V, T, 3, H', W']`` and ``mask`` ``[V, T, H', W']`` (bool) are the warp conditions' frames (cropped to
    ``H × W`` here). What the input shows is then kept exactly, through no tokenizer; the teacher fills only what the
    warp missed (issue 18).
    """
    if warped is None or mask is None:
        raise ConfigError("compositing needs the warp's frames and masks (Conditions.rgb / .mask)")
    H, W = videos.shape[-2:]
    w = warped[..., :H, :W].to("cpu", videos.dtype).clamp(0.0, 1.0)
    m = mask[..., :H, :W].to("cpu").bool()[:, :, None]
    return torch.where(m, w, videos)
