"""Input-view Gaussians: one Gaussian per pixel of the photo, for what the photo itself shows.

The student's latent head emits one Gaussian per 8 × 8 pixels per frame: right for what the teacher *generated*,
far too coarse for what the input shows. This module gives the tiny preset its pixel-resolution part:

* :func:`delivery_size` — the size of the input-view Gaussians: the photo's own resolution (the working frame's
  crop of it), long side at most ``max_side`` (default :data:`DEFAULT_MAX_SIDE`);
* :func:`sharpen_depth_edges` — the estimated depth's soft ramps across object edges pulled to the sides of the
  photo's colour edges (a joint-bilateral weighted median, only where the depth is not locally planar): a ramp
  makes the surfels a sheet stretched from the object to what lies behind it. Off by default
  (``InputViewSettings.sharpen_radius``: measured, it loses on outdoor worlds);
* :func:`upsample_depth` — the working-size depth ``[h, w]`` brought to that size without "flying" pixels: bilinear
  in log-depth, but snapped to the nearer side wherever the 3 × 3 neighbourhood spans a depth edge;
* :func:`input_view_gaussians` — colour from the pixel, centre on the pixel's ray at that depth, a surfel: a flat
  disc lying on the depth map's surface, ``footprint`` of a pixel wide as seen from the input camera;
* :func:`fit_colors` — their colours refitted so that the scene rendered at the input camera reproduces the photo
  (the renderer's low-pass makes neighbouring pixel Gaussians spill onto each other);
* :func:`hide_behind_surface` — which latent Gaussians to keep beside them, and how far to shrink them: a latent
  Gaussian on or in front of the visible surface duplicates or hides the photo and goes; one behind it is shrunk
  until its whole footprint at the input camera stays behind the surface (no halo over the photo's edges).
  Pruning therefore never removes input-view detail; it removes what the two sets duplicate, and what would
  occlude the photo at its own camera.

Conventions: OpenCV cameras, camera-to-world ``[4, 4]``, intrinsics in pixels with pixel centres at ``+0.5``;
z-depth; images RGB in [0, 1] ``[3, H, W]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.gaussians import Gaussians
from lyra.gaussians.gaussians import rotmat_to_quat
from lyra.geometry import Cameras

__all__ = ["DEFAULT_MAX_SIDE", "FOOTPRINT_RADII", "InputViewSettings", "delivery_size", "fit_colors",
           "hide_behind_surface", "input_view_gaussians", "sharpen_depth_edges", "upsample_depth"]

#: Default long side (pixels) of the input-view Gaussians.
DEFAULT_MAX_SIDE = 1024


@dataclass(frozen=True)
class InputViewSettings:
    """Constants of the input-view Gaussians (measured on the held-out test worlds, docs/scene_eval).

    Attributes:
        footprint: in-plane standard deviation, in pixels of the delivery size (the renderer adds its 0.3 px²
            low-pass on top). Measured on three test worlds with exact depth (colours refitted): 0.2–0.3 leave
            cracks in the near views, 0.6 rings at the input view; 0.3–0.45 score alike, 0.4 is between.
        thickness: out-of-plane standard deviation relative to the in-plane one (flat discs).
        max_stretch: longest in-plane step of a surfel, in pixel widths facing the camera: a slanted surface's
            surfels stretch along the slope up to this, beyond it they face the camera (:func:`input_view_gaussians`).
        opacity: opacity of every input-view Gaussian.
        edge_ratio: neighbouring depths differing by more than this factor make a depth edge (no blending).
        redundant_margin: a latent Gaussian within this relative depth of the visible surface, or in front of it,
            duplicates (or hides) what the photo shows and is dropped.
        footprint_reach: a latent Gaussian's footprint at the input camera, in standard deviations of its
            projection, that must stay behind the visible surface (:func:`hide_behind_surface`). Measured on test
            worlds 7 and 12 (outdoor) and 0 (indoor), 35 steps, CPU: 2.5 gives the input view 40.7–41.5 dB but
            opens disocclusions in far views (−0.8 to −2.0 dB against no shrinking), no shrinking leaves halos
            (input view 23.9 / 28.1 dB outdoors); 1.5 gives 35.6 / 39.9 dB at the input view, +0.5 dB in near
            views and −0.7 dB in far views (outdoor worlds, against no shrinking).
        max_depth: depths above this (or non-finite) are sky: no input-view Gaussian.
        sharpen_radius: window radius (pixels of the working size) of :func:`sharpen_depth_edges`; 0 (the
            default): off. Measured with 3 on the 32 held-out worlds (`lyra eval scene --worlds 32 --steps 35`, CPU,
            docs/bench/scene_eval_sharpened_edges/) against off: input view 39.50 → 39.18 dB, near 26.33 → 26.30 dB
            (SSIM 0.837 → 0.840, GMSD 0.127 → 0.129), far 21.54 → 21.28 dB (SSIM 0.688 → 0.693, sharpness 1.19 →
            1.16). Indoor worlds gained (far PSNR up in 9 of 12, +0.08 dB; near +0.18 dB), outdoor worlds lost (far
            −0.46 dB, up in 2 of 20): a torn sheet opens a hole that the latent head fills worse than the sheet's
            stretched colours. The stretched sheets are visibly fewer, but the scores say no, so it is off.
        sharpen_sigma: colour distance (RGB in [0, 1]) at which a window pixel's weight falls to e^−½.
        sharpen_iterations: weighted-median passes.
        sharpen_plane_tol: only pixels whose window departs from a plane (RMS residual of an affine fit of the
            disparity, relative to the disparity) by more than this are sharpened; planes stay exactly as they are.
            Measured on test worlds 3, 7 and 0 (tiny depth net, depth against the truth, median-scaled): AbsRel
            within 2 px of the true depth edges 0.205 / 0.356 / 0.177 → 0.170 / 0.312 / 0.146, the rest unchanged;
            without the plane test, textured walls and the floor at grazing angles crack.
        color_iterations: :func:`fit_colors` iterations (0: the pixels' own colours).
    """

    footprint: float = 0.4
    thickness: float = 0.1
    max_stretch: float = 16.0
    opacity: float = 1.0
    edge_ratio: float = 1.05
    redundant_margin: float = 0.05
    footprint_reach: float = 1.5
    max_depth: float = 500.0
    sharpen_radius: int = 0
    sharpen_sigma: float = 0.05
    sharpen_iterations: int = 3
    sharpen_plane_tol: float = 0.02
    color_iterations: int = 4


def delivery_size(crop_height: int, crop_width: int, max_side: int = DEFAULT_MAX_SIDE) -> tuple[int, int]:
    """``(H, W)`` of the input-view Gaussians for a photo crop of ``crop_height × crop_width``: the crop's own size,
    scaled down (never up) so that its long side is at most ``max_side``."""
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    s = min(1.0, max_side / max(crop_height, crop_width))
    return max(1, round(crop_height * s)), max(1, round(crop_width * s))


def _odd_pad(x: Tensor, radius: int) -> Tensor:
    """``x`` ``[C, H, W]`` padded by ``radius`` on every side with its point reflection about the edge pixels
    (``2·edge − mirror``): an affine function of the pixel coordinates stays affine across the border."""
    rep = F.pad(x[None], (radius,) * 4, mode="replicate")
    ref = F.pad(x[None], (radius,) * 4, mode="reflect")
    return (2 * rep - ref)[0]


def sharpen_depth_edges(depth: Tensor, image: Tensor, radius: int = 3, sigma: float = 0.05, iterations: int = 3,
                        plane_tol: float = 0.02, rows: int = 64) -> Tensor:
    """z-depth ``[H, W]`` with its soft ramps across object edges pulled towards steps, placed where ``image``
    ``[3, H, W]`` (RGB in [0, 1], same size) changes colour.

    A monocular depth estimate blurs each depth edge into a ramp a few pixels wide; lifted to surfels, the ramp
    is a sheet joining the object to what lies behind it, which novel views show as smeared streaks. Each pixel
    whose ``(2r+1)²`` window is not planar — the RMS residual of an affine fit to the disparity (inverse depth is
    affine in the pixel coordinates on any plane) exceeds ``plane_tol`` of the pixel's disparity — takes the
    weighted median of its window's log-depths, each weighted by ``exp(−|Δrgb|² / 2σ²)``, its colour's distance to
    the pixel's; ``iterations`` passes (the other pixels keep their depth throughout). A ramp pixel so moves to the
    depths of the side whose colour it shares; planes (any slant) are returned exactly as they are. (A variant that
    grows the planar pixels' depths into the ramps makes exact steps on synthetic edges but scored worse on test
    worlds 3, 7 and 0: it also flattens curved surfaces.)

    Non-finite or non-positive depths (sky) stay as they are and are read as the farthest finite depth. Works in
    bands of ``rows`` rows (bounded memory). Images not larger than the window radius are returned unchanged.
    """
    if depth.dim() != 2 or image.shape[-2:] != depth.shape or image.shape[0] != 3:
        raise ValueError(f"depth [H, W] and image [3, H, W] of one size, got {tuple(depth.shape)} and "
                         f"{tuple(image.shape)}")
    H, W = depth.shape
    d = depth.float()
    valid = torch.isfinite(d) & (d > 0)
    if radius < 1 or iterations < 1 or min(H, W) <= radius or not bool(valid.any()):
        return depth.clone()
    x0 = torch.where(valid, d, d[valid].max()).log()
    k = 2 * radius + 1
    yy, xx = torch.meshgrid(torch.arange(k, dtype=torch.float32) - radius,
                            torch.arange(k, dtype=torch.float32) - radius, indexing="ij")
    design = torch.stack([xx.flatten(), yy.flatten(), torch.ones(k * k)], 1).to(d.device)  # [k², 3]
    residual = torch.eye(k * k, device=d.device) - design @ torch.linalg.pinv(design)  # [k², k²]

    def windows(padded: Tensor, top: int, bottom: int) -> Tensor:
        """The windows ``[C, k², n]`` of rows ``top:bottom`` from a ``[C, H + 2r, W + 2r]`` padded tensor."""
        return F.unfold(padded[None, :, top:bottom + 2 * radius], k).view(padded.shape[0], k * k, -1)

    disparity = (-x0).exp()[None]
    padded_disparity = _odd_pad(disparity, radius)
    bent = torch.empty(H, W, dtype=torch.bool, device=d.device)
    for top in range(0, H, rows):
        bottom = min(H, top + rows)
        fit = residual @ windows(padded_disparity, top, bottom)[0]  # [k², n]: what a plane does not explain
        bent[top:bottom] = (fit.pow(2).mean(0).sqrt() > plane_tol * disparity[0, top:bottom].flatten()).view(-1, W)
    img = image.float().to(d.device)
    padded_img = F.pad(img[None], (radius,) * 4, mode="replicate")[0]
    x = x0
    for _ in range(iterations):
        padded_x = F.pad(x[None, None], (radius,) * 4, mode="replicate")[0]
        out = x.clone()
        for top in range(0, H, rows):
            bottom = min(H, top + rows)
            centre = img[:, top:bottom].reshape(3, 1, -1)
            weight = torch.exp(-((windows(padded_img, top, bottom) - centre) ** 2).sum(0) / (2 * sigma ** 2))
            ordered, order = windows(padded_x, top, bottom)[0].sort(dim=0)
            cum = weight.gather(0, order).cumsum(0)  # [k², n]
            pick = (cum < cum[-1:] / 2).sum(0, keepdim=True).clamp(max=k * k - 1)
            out[top:bottom] = ordered.gather(0, pick).view(bottom - top, W)
        x = torch.where(bent, out, x0)
    return torch.where(bent & valid, x.exp(), depth.float())


def upsample_depth(depth: Tensor, height: int, width: int, edge_ratio: float = 1.05) -> Tensor:
    """z-depth ``[h, w]`` → ``[height, width]`` without intermediate depths across depth edges.

    Bilinear interpolation of log-depth, except where the 3 × 3 low-resolution neighbourhood spans more than a
    factor ``edge_ratio``: there the value snaps to the neighbourhood's minimum or maximum, whichever is nearer in
    log-depth (a foreground/background edge stays an edge, with no Gaussians floating between the two).
    Non-finite or non-positive depths (sky) stay ``inf`` (nearest-neighbour for validity).
    """
    if depth.dim() != 2:
        raise ValueError(f"depth must be [h, w], got {tuple(depth.shape)}")
    d = depth.float()
    valid = torch.isfinite(d) & (d > 0)
    if (height, width) == tuple(d.shape):
        return torch.where(valid, d, torch.full_like(d, math.inf))
    fill = d[valid].max() if bool(valid.any()) else torch.tensor(1.0)
    logd = torch.where(valid, d, fill).log()[None, None]
    hi = F.max_pool2d(logd, 3, 1, 1)
    lo = -F.max_pool2d(-logd, 3, 1, 1)
    size = (height, width)
    bil = F.interpolate(logd, size=size, mode="bilinear", align_corners=False)
    hi_up = F.interpolate(hi, size=size, mode="nearest")
    lo_up = F.interpolate(lo, size=size, mode="nearest")
    edge = (hi_up - lo_up) > math.log(edge_ratio)
    snapped = torch.where(bil - lo_up < hi_up - bil, lo_up, hi_up)
    out = torch.where(edge, snapped, bil)[0, 0].exp()
    valid_up = F.interpolate(valid[None, None].float(), size=size, mode="nearest")[0, 0] > 0.5
    return torch.where(valid_up, out, torch.full_like(out, math.inf))


def _pixel_steps(points: Tensor, valid: Tensor, dim: int) -> Tensor:
    """The surface step to the neighbouring pixel along ``dim`` (-1: columns, -2: rows) of ``points`` ``[H, W, 3]``:
    of the forward and backward differences, the shorter (the side on the same surface at a depth edge); ``inf``
    where neither neighbour is valid."""
    fwd = torch.full_like(points, math.inf)
    bwd = torch.full_like(points, math.inf)
    if dim == -1:
        step = points[:, 1:] - points[:, :-1]
        ok = (valid[:, 1:] & valid[:, :-1])[..., None]
        fwd[:, :-1] = torch.where(ok, step, math.inf)
        bwd[:, 1:] = torch.where(ok, step, math.inf)
    else:
        step = points[1:] - points[:-1]
        ok = (valid[1:] & valid[:-1])[..., None]
        fwd[:-1] = torch.where(ok, step, math.inf)
        bwd[1:] = torch.where(ok, step, math.inf)
    use_fwd = fwd.norm(dim=-1, keepdim=True) <= bwd.norm(dim=-1, keepdim=True)
    return torch.where(use_fwd, fwd, bwd)


def input_view_gaussians(image: Tensor, depth: Tensor, camera: Cameras,
                         settings: InputViewSettings = InputViewSettings()) -> Gaussians:
    """One flat Gaussian per pixel of ``image`` ``[3, H, W]`` at z-depth ``depth`` ``[H, W]`` (already at the image's
    size, :func:`upsample_depth`), seen from ``camera`` (batch shape ``[]``, size ``W × H``).

    Each Gaussian is a surfel: centre on the pixel's ray at the pixel's depth, colour the pixel's, opacity
    ``settings.opacity``, and a flat disc lying **on the surface** the depth map describes. Its two in-plane axes
    are the surface steps to the neighbouring pixels (the shorter of the forward and backward differences, so a
    depth edge does not stretch it across the gap), rescaled to project to exactly one pixel, times
    ``settings.footprint``; its thickness along the normal is
    ``settings.thickness`` of the pixel's camera-facing footprint. Seen from the input camera each one covers its
    pixel as a round ``footprint``-pixel disc; seen from the side (a novel view) neighbouring surfels still touch,
    where camera-facing discs would open gaps along slanted surfaces. Where no neighbour lies on the same surface
    (a step longer than ``settings.max_stretch`` camera-facing pixel widths: a thin structure between two depth
    edges, or a surface seen almost edge-on) the surfel faces the camera instead. Either way its projection at the
    input camera is the same round disc. Sky pixels (non-finite depth or above ``settings.max_depth``) get none.
    Row-major order.
    """
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be [3, H, W], got {tuple(image.shape)}")
    H, W = image.shape[-2:]
    if tuple(depth.shape) != (H, W) or camera.shape != () or (camera.width, camera.height) != (W, H):
        raise ValueError(f"image {tuple(image.shape)}, depth {tuple(depth.shape)} and camera "
                         f"{camera.width}x{camera.height} (batch {tuple(camera.shape)}) do not match")
    d = depth.float()
    valid = torch.isfinite(d) & (d > 0) & (d <= settings.max_depth)
    d_safe = torch.where(valid, d, torch.ones_like(d))
    points = camera.unproject(d_safe)  # [H, W, 3]
    focal = 0.5 * (camera.K[0, 0] + camera.K[1, 1])
    facing = (d_safe / focal)[..., None]  # [H, W, 1]: a pixel's width at its depth, facing the camera
    R = camera.c2w[:3, :3].float()
    K = camera.K.float()
    p_cam = (points - camera.c2w[:3, 3].float()) @ R  # [H, W, 3] camera coordinates
    z = p_cam[..., 2:].clamp_min(1e-9)
    axes = []
    for dim, cam_axis in ((-1, R[:, 0]), (-2, R[:, 1])):
        t = _pixel_steps(points, valid, dim)
        t = torch.where(torch.isfinite(t), t, torch.zeros_like(t))
        # scale the step so that it projects to exactly one pixel at the centre (the pinhole Jacobian there): a
        # finite difference across a steep depth change projects shorter, and the disc would not cover its pixel
        tc = t @ R
        du = K[0, 0] * (tc[..., :1] / z - p_cam[..., :1] * tc[..., 2:] / z**2)
        dv = K[1, 1] * (tc[..., 1:2] / z - p_cam[..., 1:2] * tc[..., 2:] / z**2)
        px = (du**2 + dv**2).sqrt()
        t = t / px.clamp_min(1e-9)
        n = t.norm(dim=-1, keepdim=True)
        facing_step = cam_axis.expand_as(t) * facing  # the step on a plane facing the camera
        t = torch.where((px > 1e-6) & (n <= settings.max_stretch * facing), t, facing_step)
        axes.append(t[valid])
    tu, tv = axes  # [N, 3] each
    normal = torch.nn.functional.normalize(torch.linalg.cross(tu, tv, dim=-1), dim=-1)
    thick = settings.thickness * settings.footprint * facing[valid]  # [N, 1]
    f2 = settings.footprint ** 2
    cov = f2 * (tu[:, :, None] * tu[:, None, :] + tv[:, :, None] * tv[:, None, :]) \
        + thick[:, :, None] ** 2 * normal[:, :, None] * normal[:, None, :]
    evals, evecs = torch.linalg.eigh(cov.double())
    flip = torch.linalg.det(evecs) < 0
    evecs[flip, :, 0] = -evecs[flip, :, 0]
    n = int(valid.sum())
    return Gaussians(
        means=points[valid],
        quats=rotmat_to_quat(evecs.float()),
        scales=evals.clamp_min(0).sqrt().float().clamp_min(1e-7),
        opacities=torch.full((n,), settings.opacity, dtype=points.dtype, device=points.device),
        colors=image.float().permute(1, 2, 0)[valid].clamp(0, 1),
    )


@torch.no_grad()
def fit_colors(gaussians: Gaussians, count: int, camera: Cameras, image: Tensor, iterations: int = 4,
               background: tuple[float, float, float] = (1.0, 1.0, 1.0), backend: str = "auto") -> Gaussians:
    """Refit the colours of the first ``count`` Gaussians (the input-view ones, each centred on a pixel of ``camera``)
    so that the scene rendered at ``camera`` reproduces ``image`` ``[3, H, W]``.

    A rendered pixel is linear in the colours (``Σ wᵢ cᵢ`` plus the background), but a pixel Gaussian's neighbours
    spill onto its pixel (up to a quarter of it with the renderer's 0.3 px² low-pass), which blurs the photo. Each
    iteration renders the scene and adds the residual ``image − render`` at its pixel to each input-view Gaussian's
    colour (a Richardson iteration on that linear system), clamped to [0, 1] so that every format and viewer keeps
    it. The other Gaussians are unchanged.

    Returns:
        new :class:`~lyra.gaussians.Gaussians` (same order, geometry and opacities).
    """
    from lyra.render import render

    if count == 0 or iterations <= 0:
        return gaussians
    H, W = image.shape[-2:]
    if (camera.width, camera.height) != (W, H) or camera.shape != ():
        raise ValueError(f"image {tuple(image.shape)} and camera {camera.width}x{camera.height} do not match")
    dev = gaussians.means.device
    cam = camera.to(dev)
    uv, _ = cam.project(gaussians.means[:count].float())
    u = torch.floor(uv[:, 0]).long().clamp(0, W - 1)
    v = torch.floor(uv[:, 1]).long().clamp(0, H - 1)
    target = image.to(dev).float()[:, v, u].T  # [count, 3]
    colors = gaussians.colors.clone()
    g = gaussians
    for _ in range(iterations):
        g = Gaussians(g.means, g.quats, g.scales, g.opacities, colors, g.sh_rest)
        out = render(g, cam.reshape(1), background=background, backend=backend).rgb[0].float()  # [H, W, 3]
        colors[:count] = (colors[:count] + target - out[v, u]).clamp(0.0, 1.0)
    return Gaussians(g.means, g.quats, g.scales, g.opacities, colors, g.sh_rest)


#: Half-widths (pixels) of the windows that :func:`hide_behind_surface` tests a latent Gaussian's footprint over.
FOOTPRINT_RADII = (0, 1, 2, 4, 8, 16, 32, 64)


def _window_max(x: Tensor, radius: int) -> Tensor:
    """Maximum over the ``(2·radius + 1)²`` window around each pixel of ``x`` ``[H, W]`` (separable; ``-inf``
    outside the map)."""
    if radius == 0:
        return x
    k = 2 * radius + 1
    y = F.max_pool2d(x[None, None], (1, k), 1, (0, radius))
    return F.max_pool2d(y, (k, 1), 1, (radius, 0))[0, 0]


def hide_behind_surface(gaussians: Gaussians, depth: Tensor, camera: Cameras, margin: float = 0.05,
                        reach: float = 1.5) -> tuple[Tensor, Tensor]:
    """Which of ``gaussians`` (the latent head's) to keep beside the input-view Gaussians, and how much to shrink them
    so that none shows at the input camera over what the photo shows.

    A latent Gaussian is seen at ``camera`` over a disc of radius ``reach`` standard deviations of its projection
    (its largest scale · f / z pixels). It must stay hidden there: behind the visible surface ``depth`` ``[H, W]``
    (z-depth at ``camera``'s size, batch shape ``[]``) by more than ``margin`` (relative) at every pixel of the
    disc. Pixels without depth (sky: non-finite or non-positive) and pixels outside the frame constrain nothing
    (the photo shows no surface there). The test runs on square windows of :data:`FOOTPRINT_RADII` pixels:

    * the centre's own pixel is not hidden (the Gaussian is on the visible surface — the input-view Gaussians hold
      that, sharper — or in front of it, where it would hide the photo): **dropped**;
    * else the Gaussian is shrunk (all scales alike) until its disc fits the largest window that is hidden, so it
      keeps filling what the photo cannot show (disocclusions behind an edge) without a halo over the edge.

    Gaussians behind the camera, or whose centre is over 64 px outside the frame, are kept whole.

    Returns:
        ``(keep, shrink)``: a bool mask ``[N]`` and scale factors ``[N]`` in ``(0, 1]`` (1 where nothing changes).
    """
    n = len(gaussians)
    dev = gaussians.means.device
    if n == 0:
        return torch.zeros(0, dtype=torch.bool, device=dev), torch.ones(0, device=dev)
    H, W = depth.shape
    if (camera.width, camera.height) != (W, H) or camera.shape != ():
        raise ValueError(f"depth {tuple(depth.shape)} and camera {camera.width}x{camera.height} do not match")
    pad = FOOTPRINT_RADII[-1]
    d = depth.to(dev).float()
    known = torch.isfinite(d) & (d > 0)
    surface = torch.full((H + 2 * pad, W + 2 * pad), -math.inf, device=dev)
    surface[pad:pad + H, pad:pad + W] = torch.where(known, d, torch.full_like(d, -math.inf))
    cam = camera.to(dev)
    uv, z = cam.project(gaussians.means.float())
    u = torch.floor(uv[:, 0]).long() + pad
    v = torch.floor(uv[:, 1]).long() + pad
    near = (z > 0) & (u >= 0) & (u < W + 2 * pad) & (v >= 0) & (v < H + 2 * pad)
    ui, vi = u.clamp(0, W + 2 * pad - 1), v.clamp(0, H + 2 * pad - 1)
    focal = 0.5 * (cam.K[0, 0] + cam.K[1, 1])
    radius = reach * focal * gaussians.scales.float().amax(-1) / z.clamp_min(1e-6)  # [N] pixels
    fits = torch.zeros(n, device=dev)  # half-width of the largest hidden window (0: not even the centre)
    hidden_so_far = torch.ones(n, dtype=torch.bool, device=dev)
    for r in FOOTPRINT_RADII:
        front = _window_max(surface, r)[vi, ui]
        hidden_so_far &= z > front * (1.0 + margin)
        fits = torch.where(hidden_so_far, torch.full_like(fits, r + 0.5), fits)
    keep = ~near | (fits > 0)
    shrink = torch.where(near & keep, (fits / radius.clamp_min(1e-6)).clamp(max=1.0), torch.ones_like(fits))
    return keep, shrink.clamp_min(1e-3)
