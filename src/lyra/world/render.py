"""Render procedural worlds: RGB, z-depth and object ids for any ``Cameras`` batch, CPU or CUDA.

Anti-aliasing: textures are pre-filtered by the pixel footprint (:mod:`lyra.world.textures`) and
every pixel whose 3×3 neighbourhood contains another surface (object id or face changes: silhouettes,
creases, sky edges) is re-rendered with 4 rotated-grid sub-samples whose mean replaces its colour
(adaptive 4× supersampling where aliasing happens). Depth and ids are those of the pixel-centre
sample. ``aa="full"`` supersamples every pixel (slow; for checks), ``aa="none"`` disables it.

Depth is z-depth along each camera's optical axis; rays that leave the world (outdoor sky) have depth
``inf`` and id 0.

Photo-style scenes (``SceneBatch.style == "photo"``, :mod:`lyra.world.photo`) are shaded by
:mod:`lyra.world.photo_light` and their ``rgb`` is linear radiance, not clamped above (high dynamic range): the
camera model (:func:`lyra.world.camera_model.develop`, applied by :func:`lyra.world.sample.render_samples`) turns
it into a photograph. Classic scenes are shaded exactly as before the photo style existed.

Speed: one ``tiny`` example (97 distinct frames of 176×320) takes about 3.5–4 s on two CPU cores with
eager torch; ``LYRA_WORLD_COMPILE=cpu`` fuses the kernels with ``torch.compile`` (about 1.7× faster
after a 20–60 s warm-up per process, see :mod:`lyra.world._compile`). On a machine shared with other
busy processes, OpenMP threads that spin-wait for each other can make CPU rendering many times slower:
use ``OMP_WAIT_POLICY=PASSIVE`` or one thread there. On CUDA, render many examples per call
(:func:`lyra.world.sample.render_samples`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lyra.geometry.cameras import Cameras
from lyra.world.lighting import ShadowMaps, scene_params, shade, shadow_maps
from lyra.world.photo_light import photo_sky, shade_photo, with_sky_visibility
from lyra.world.raycast import Candidates, Rays, Views, camera_tiles, cull, surface, trace, untile
from lyra.world.scene import Scene, SceneBatch
from lyra.world.textures import sky_color

#: Rotated-grid sub-pixel offsets (in pixels, relative to the pixel centre).
RGSS = ((0.125, -0.375), (0.375, 0.125), (-0.125, 0.375), (-0.375, -0.125))
AA_MODES = ("adaptive", "full", "none")


@dataclass
class RenderResult:
    """``rgb`` [..., 3, H, W] in [0, 1]; ``depth`` [..., H, W] z-depth (inf = sky); ``ids`` [..., H, W]
    int32 object ids (0 = sky, object index + 1); ``edges`` [..., H, W] bool: pixels supersampled."""

    rgb: Tensor
    depth: Tensor
    ids: Tensor
    edges: Tensor


def _as_batch(scenes: Scene | Sequence[Scene] | SceneBatch, device: torch.device) -> SceneBatch:
    if isinstance(scenes, SceneBatch):
        if scenes.device == device:
            return scenes
        return SceneBatch({k: v.to(device) for k, v in scenes.tensors.items()}, scenes.families, scenes.seeds,
                          scenes.style)
    if isinstance(scenes, Scene):
        scenes = [scenes]
    return SceneBatch.pack(list(scenes), device)


def _shade_rays(batch: SceneBatch, views: Views, rays: Rays, t: Tensor, code: Tensor, maps: ShadowMaps,
                focal: Tensor, footprint_scale: float) -> tuple[Tensor, Tensor, Tensor]:
    """RGB [3, n·R], object id [n·R] (int32) and face id [n·R] of traced rays."""
    n, R = rays.n, rays.R
    dev = t.device
    surf = surface(batch, views, rays, t, code)
    rgb = torch.zeros(3, n * R, device=dev)
    ids = torch.zeros(n * R, dtype=torch.int32, device=dev)
    face = torch.zeros(n * R, dtype=torch.int32, device=dev)
    if surf.index.numel():
        d = surf.d
        dn = torch.sqrt((d * d).sum(0))
        cos = ((surf.normal * d).sum(0) / dn).abs().clamp_min(0.25)
        f = focal.index_select(0, surf.view)
        w = surf.t * dn / f / cos * footprint_scale
        shader = shade_photo if batch.style == "photo" else shade
        rgb.index_copy_(1, surf.index, shader(batch, views, surf, w, maps))
        ids.index_copy_(0, surf.index, (surf.obj + 1).int())
        face.index_copy_(0, surf.index, surf.face.int())
    miss = (code.reshape(-1) == 0).nonzero().squeeze(1)
    if miss.numel():
        g = batch.tensors
        view = rays.view.index_select(0, miss // R)
        sc = views.scene.index_select(0, view)
        d = rays.d.reshape(3, -1).index_select(1, miss)
        d = d * torch.rsqrt((d * d).sum(0))
        light = scene_params(g["light"], sc)
        w_ang = footprint_scale / focal.index_select(0, view)
        if batch.style == "photo":
            sky = photo_sky(d, scene_params(g["sky"], sc), light, w_ang)
        else:
            sky = sky_color(d, scene_params(g["sky"], sc), light[0:3], light[3:6], w_ang)
        rgb.index_copy_(1, miss, sky)
    return rgb, ids, face


def _edge_pixels(key: Tensor) -> Tensor:
    """Pixels ``[N, H, W]`` whose 3×3 neighbourhood holds a different ``key``."""
    pad = torch.nn.functional.pad(key[:, None].float(), (1, 1, 1, 1), mode="replicate")[:, 0]
    H, W = key.shape[-2:]
    edge = torch.zeros_like(key, dtype=torch.bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy == 1 and dx == 1:
                continue
            edge |= pad[:, dy:dy + H, dx:dx + W] != key.float()
    return edge


def _subsample_rays(K: Tensor, c2w: Tensor, view: Tensor, pix: Tensor, W: int, H: int, tile: int,
                    parent_rays: Rays, offsets: Sequence[tuple[float, float]]) -> tuple[Rays, Tensor]:
    """Sub-pixel rays for pixels ``pix`` [m] (flat index into [N, H, W]); one group per pixel.

    Returns the rays and each pixel's parent tile group (for reusing its culling candidates).
    """
    dev = K.device
    cam = pix // (H * W)
    rem = pix % (H * W)
    y, x = rem // W, rem % W
    off = torch.tensor(offsets, device=dev, dtype=torch.float32)  # [S, 2]
    u = x[:, None].float() + 0.5 + off[None, :, 0]
    v = y[:, None].float() + 0.5 + off[None, :, 1]
    Kc = K[cam]
    yy = (v - Kc[:, 1, 2, None]) / Kc[:, 1, 1, None]
    xx = (u - Kc[:, 0, 2, None] - Kc[:, 0, 1, None] * yy) / Kc[:, 0, 0, None]
    Rm = c2w[cam, :3, :3]
    d = torch.stack([Rm[:, k, 0, None] * xx + Rm[:, k, 1, None] * yy + Rm[:, k, 2, None] for k in range(3)], 0)
    Hp = -(-H // tile) * tile
    Wp = -(-W // tile) * tile
    ntx = Wp // tile
    parent = cam * (Hp // tile) * ntx + (y // tile) * ntx + (x // tile)
    rays = Rays(view=view[cam], o=c2w[cam, :3, 3].T[:, :, None].contiguous(), d=d.contiguous(),
                beam_o=parent_rays.beam_o[parent], beam_a=parent_rays.beam_a[parent],
                beam_tan=parent_rays.beam_tan[parent], beam_rho=parent_rays.beam_rho[parent],
                zaxis=parent_rays.zaxis[parent])
    return rays, parent


def _render_chunk(batch: SceneBatch, views: Views, maps: ShadowMaps, K: Tensor, c2w: Tensor, view: Tensor,
                  W: int, H: int, tile: int, aa: str, aa_pixels: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    N = K.shape[0]
    focal = torch.zeros(views.scene.numel(), device=K.device)  # focal length (pixels) per view
    focal[view] = K[:, 1, 1]
    rays, Hp, Wp = camera_tiles(K, c2w, W, H, tile, view)
    cand = cull(views, rays)
    t, code = trace(views, rays, cand)
    rgb, ids, face = _shade_rays(batch, views, rays, t, code, maps, focal, 1.0)
    R = rays.R
    n = rays.n
    rgb = untile(rgb.reshape(3, n, R), N, Hp, Wp, tile, H, W).permute(1, 0, 2, 3)  # [N, 3, H, W]
    depth = untile(t, N, Hp, Wp, tile, H, W)
    ids_img = untile(ids.reshape(n, R), N, Hp, Wp, tile, H, W)
    face_img = untile(face.reshape(n, R), N, Hp, Wp, tile, H, W)
    if aa == "none":
        return rgb.contiguous(), depth.contiguous(), ids_img.contiguous(), torch.zeros_like(ids_img, dtype=torch.bool)
    if aa == "full":
        edges = torch.ones_like(ids_img, dtype=torch.bool)
    else:
        edges = _edge_pixels(ids_img.long() * 8 + face_img.long())
    pix = edges.reshape(-1).nonzero().squeeze(1)
    if pix.numel():
        rgb_flat = rgb.permute(1, 0, 2, 3).reshape(3, -1).clone()
        for p0 in range(0, pix.numel(), aa_pixels):
            px = pix[p0:p0 + aa_pixels]
            sub, parent = _subsample_rays(K, c2w, view, px, W, H, tile, rays, RGSS)
            sc: Candidates = cand.select(parent)
            ts, cs = trace(views, sub, sc)
            srgb, _, _ = _shade_rays(batch, views, sub, ts, cs, maps, focal, 0.5)
            rgb_flat.index_copy_(1, px, srgb.reshape(3, px.numel(), len(RGSS)).mean(2))
        rgb = rgb_flat.reshape(3, N, H, W).permute(1, 0, 2, 3)
    return rgb.contiguous(), depth.contiguous(), ids_img.contiguous(), edges


def render(
    scenes: Scene | Sequence[Scene] | SceneBatch,
    cameras: Cameras,
    times: Tensor | float | None = None,
    scene_index: Tensor | None = None,
    aa: str = "adaptive",
    device: torch.device | str | None = None,
    tile: int | None = None,
    max_pixels: int | None = None,
    shadow_res: tuple[int, int] | None = None,
) -> RenderResult:
    """Render ``cameras`` (any batch shape ``[...]``) of one or several scenes.

    Args:
        scenes: a :class:`Scene`, a list of scenes or a packed :class:`SceneBatch`.
        cameras: ``Cameras`` of batch shape ``[...]`` (one image size).
        times: time in [0, 1] of each camera, scalar or ``[...]`` (dynamic scenes; default 0).
        scene_index: scene of each camera ``[...]`` (default all 0).
        aa: ``"adaptive"`` (default), ``"full"`` or ``"none"`` (see the module doc).
        device: where to render (default: the cameras' device).
        tile: ray-tile size (default 16; 8 for images under 64 pixels on a side).
        max_pixels: pixels rendered per chunk (memory bound); default 2^20 on CPU, 2^24 on CUDA.
        shadow_res: shadow-map resolutions (static casters, moving casters); default from the image
            size: the power of two ≥ 1.6 × its longer side, in [128, 512] (512 for ``tiny``), and half that.

    Returns:
        :class:`RenderResult` with batch shape ``[...]``.
    """
    if aa not in AA_MODES:
        raise ValueError(f"aa must be one of {AA_MODES}, got {aa!r}")
    dev = torch.device(device) if device is not None else cameras.device
    batch = _as_batch(scenes, dev)
    shape = cameras.shape
    flat = cameras.flatten().to(dev)
    N = len(flat)
    W, H = flat.width, flat.height
    if times is None:
        times_t = torch.zeros(N, device=dev)
    else:
        times_t = torch.as_tensor(times, dtype=torch.float32, device=dev).expand(shape).reshape(N)
    if scene_index is None:
        scene_t = torch.zeros(N, dtype=torch.long, device=dev)
    else:
        scene_t = torch.as_tensor(scene_index, dtype=torch.long, device=dev).expand(shape).reshape(N)
    if tile is None:
        tile = 16 if min(H, W) >= 64 else 8
    cuda = dev.type == "cuda"
    if max_pixels is None:
        max_pixels = (1 << 24) if cuda else (1 << 20)
    aa_pixels = max(1, max_pixels // len(RGSS))  # edge pixels supersampled per pass (4 rays each)
    views = Views.make(batch, scene_t, times_t)
    if shadow_res is None:
        res = min(512, max(128, 1 << math.ceil(math.log2(1.6 * max(H, W)))))
        shadow_res = (res, res // 2)
    maps = shadow_maps(batch, scene_t, times_t, *shadow_res)
    if batch.style == "photo":
        maps = with_sky_visibility(batch, maps)
    per = max(1, max_pixels // (H * W))
    rgb = torch.empty(N, 3, H, W, device=dev)
    depth = torch.empty(N, H, W, device=dev)
    ids = torch.empty(N, H, W, dtype=torch.int32, device=dev)
    edges = torch.empty(N, H, W, dtype=torch.bool, device=dev)
    view_all = torch.arange(N, device=dev)
    for c0 in range(0, N, per):
        sl = slice(c0, min(N, c0 + per))
        r, d, i, e = _render_chunk(batch, views, maps, flat.K[sl], flat.c2w[sl], view_all[sl], W, H, tile, aa,
                                   aa_pixels)
        rgb[sl], depth[sl], ids[sl], edges[sl] = r, d, i, e
    return RenderResult(rgb.reshape(*shape, 3, H, W), depth.reshape(*shape, H, W), ids.reshape(*shape, H, W),
                        edges.reshape(*shape, H, W))


def render_views(
    scenes: Scene | Sequence[Scene] | SceneBatch,
    cameras: Cameras,
    times: Tensor | float | None = None,
    scene_index: Tensor | None = None,
    aa: str = "adaptive",
    device: torch.device | str | None = None,
) -> Tensor:
    """Only the images ``[..., 3, H, W]`` of :func:`render` (e.g. clips for the tokenizer trainer)."""
    return render(scenes, cameras, times, scene_index, aa, device).rgb


def render_depth(
    scenes: Scene | Sequence[Scene] | SceneBatch,
    cameras: Cameras,
    times: Tensor | float | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """Geometry only (no shading, no anti-aliasing): z-depth ``[..., H, W]`` and ids ``[..., H, W]``.

    Cheap probe renders used when placing cameras.
    """
    dev = torch.device(device) if device is not None else cameras.device
    batch = _as_batch(scenes, dev)
    shape = cameras.shape
    flat = cameras.flatten().to(dev)
    N = len(flat)
    times_t = torch.zeros(N, device=dev) if times is None else \
        torch.as_tensor(times, dtype=torch.float32, device=dev).expand(shape).reshape(N)
    views = Views.make(batch, torch.zeros(N, dtype=torch.long, device=dev), times_t)
    tile = 16 if min(flat.height, flat.width) >= 64 else 8
    rays, Hp, Wp = camera_tiles(flat.K, flat.c2w, flat.width, flat.height, tile, torch.arange(N, device=dev))
    t, code = trace(views, rays, cull(views, rays))
    surf_ids = torch.zeros_like(code)
    hit = code != 0
    if bool(hit.any()):
        s = surface(batch, views, rays, t, code)
        surf_ids.view(-1)[s.index] = (s.obj + 1).int()
    depth = untile(t, N, Hp, Wp, tile, flat.height, flat.width)
    ids = untile(surf_ids, N, Hp, Wp, tile, flat.height, flat.width)
    return depth.reshape(*shape, flat.height, flat.width), ids.reshape(*shape, flat.height, flat.width)
