"""TSDF fusion of rendered depth: Gaussians + cameras → a truncated signed distance grid with colours.

Method (Curless & Levoy's volumetric integration, on a sparse set of voxels):

1. every camera sees the Gaussians as a depth map and a colour image, by one of two depth sources:

   * ``"render"`` — the rasterizer (:func:`lyra.render.render`): colour, expected z-depth and alpha; exact, but on a
     CPU slow for generated scenes (their Gaussians are large, so every pixel blends hundreds of them);
   * ``"points"`` — :func:`splat_depth_views`: each Gaussian's centre is splatted as a small disc (its projected
     size, at most ``max_radius`` pixels, opacity falling off as the Gaussian does) and each pixel takes the
     **median depth**, where the front-to-back accumulated opacity first reaches 1/2 (faint floaters in front do
     not count), and the colour of that Gaussian; tens of times faster on a CPU.

   Pixels are kept where the accumulated opacity ≥ ``min_alpha`` and the depth is smooth (relative jump to a
   4-neighbour ≤ ``max_depth_jump``), so blended depths at silhouettes ("flying pixels") are dropped;
2. the kept pixels, unprojected, bound the grid (0.5–99.5 percentiles, padded by the truncation) and mark the
   voxels near a surface; the grid has ``resolution`` voxels along its longest side, and only voxels within the
   truncation band of some observed point are integrated (a few percent of the grid);
3. each active voxel centre is projected into each camera; with ``d`` the kept depth at its pixel and ``z`` its
   depth, ``sdf = d − z``; where ``sdf > −trunc`` the voxel accumulates ``clamp(sdf / trunc, −1, 1)`` with weight 1
   and, within the band, the pixel's colour.

Conventions: cameras OpenCV, camera-to-world; the grid is axis-aligned in the Gaussians' world; positive TSDF =
free space in front of the surface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lyra.errors import ConfigError
from lyra.gaussians import Gaussians
from lyra.geometry.cameras import Cameras


@dataclass
class RenderedViews:
    """Rendered frames of a scene: ``rgb`` ``[V, H, W, 3]``, ``depth`` ``[V, H, W]`` (0 where not kept),
    ``cameras`` flat ``[V]``."""

    rgb: Tensor
    depth: Tensor
    cameras: Cameras


@dataclass
class TSDFVolume:
    """A fused grid.

    Attributes:
        tsdf: ``[X, Y, Z]`` float32 truncated SDF in units of the truncation (1 where never observed).
        weight: ``[X, Y, Z]`` float32 number of observations.
        color: ``[X, Y, Z, 3]`` float32 mean colour of the in-band observations (0 where none).
        origin: ``[3]`` world position of voxel (0, 0, 0)'s centre.
        voxel: voxel side (world units).
        trunc: truncation distance (world units).
    """

    tsdf: np.ndarray
    weight: np.ndarray
    color: np.ndarray
    origin: np.ndarray
    voxel: float
    trunc: float


def render_views(gaussians: Gaussians, cameras: Cameras, min_alpha: float = 0.5, max_depth_jump: float = 0.05,
                 chunk: int = 8, backend: str = "auto") -> RenderedViews:
    """Render every camera of ``cameras`` (flat ``[V]``) and mask unreliable depth (see the module doc)."""
    from lyra.render import render

    cams = cameras.flatten()
    rgbs, depths = [], []
    dev = gaussians.device
    with torch.no_grad():
        for i in range(0, cams.shape[0], chunk):
            out = render(gaussians, cams[i:i + chunk].to(dev), background=(0.0, 0.0, 0.0), backend=backend)
            d = out.depth.float()
            ok = (out.alpha >= min_alpha) & (d > 0) & torch.isfinite(d) & _smooth_mask(d, max_depth_jump)
            rgbs.append(out.rgb.float().clamp(0, 1).cpu())
            depths.append(torch.where(ok, d, torch.zeros_like(d)).cpu())
    return RenderedViews(torch.cat(rgbs), torch.cat(depths), cams.to("cpu"))


def _smooth_mask(d: Tensor, max_depth_jump: float) -> Tensor:
    """``[V, H, W]`` True where no 4-neighbour's depth differs by more than ``max_depth_jump`` · depth."""
    pad = torch.nn.functional.pad(d[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    jump = torch.zeros_like(d)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        jump = torch.maximum(jump, (pad[:, dy:dy + d.shape[1], dx:dx + d.shape[2]] - d).abs())
    return jump <= max_depth_jump * d.clamp_min(1e-6)


def splat_depth_views(gaussians: Gaussians, cameras: Cameras, min_alpha: float = 0.5, max_depth_jump: float = 0.05,
                      max_radius: int = 3) -> RenderedViews:
    """Median-depth maps of the Gaussians' centres splatted as discs (the ``"points"`` source of the module doc).

    Each Gaussian in front of a camera covers the pixels within ``r = min(ceil(2σ), max_radius)`` of its projected
    centre, σ = focal · (geometric-mean scale) / depth, with alpha ``opacity · exp(−½ d²/σ²)``; per pixel the
    contributions are sorted by depth and the first one that brings the transmittance to ≤ 1/2 gives the depth and
    colour. Returns :class:`RenderedViews` (depth 0 where the accumulated opacity stays below ``min_alpha`` or the
    depth is not smooth).
    """
    cams = cameras.flatten().to("cpu")
    g = gaussians.to("cpu")
    means = g.means.double()
    sigma_world = g.scales.double().prod(-1).pow(1 / 3)
    opac = g.opacities.double().clamp(0, 0.999)
    cols = g.colors.float().clamp(0, 1)
    V, H, W = cams.shape[0], cams.height, cams.width
    rgb_out = torch.zeros(V, H, W, 3)
    depth_out = torch.zeros(V, H, W)
    offs = torch.stack(torch.meshgrid(torch.arange(-max_radius, max_radius + 1),
                                      torch.arange(-max_radius, max_radius + 1), indexing="ij"), -1).reshape(-1, 2)
    off_r = offs.double().norm(dim=-1)
    w2c = cams.w2c.double()
    K = cams.K.double()
    for v in range(V):
        p = means @ w2c[v, :3, :3].T + w2c[v, :3, 3]
        z = p[:, 2]
        ok = z > 1e-3
        u = K[v, 0, 0] * p[:, 0] / z.clamp_min(1e-3) + K[v, 0, 2]
        w_ = K[v, 1, 1] * p[:, 1] / z.clamp_min(1e-3) + K[v, 1, 2]
        ok &= (u > -max_radius) & (u < W + max_radius) & (w_ > -max_radius) & (w_ < H + max_radius)
        idx = torch.nonzero(ok)[:, 0]
        if len(idx) == 0:
            continue
        sig = (K[v, 1, 1] * sigma_world[idx] / z[idx]).clamp_min(0.5)
        rad = torch.clamp(torch.ceil(2 * sig), max=max_radius)
        px = torch.floor(u[idx])[:, None] + offs[None, :, 1]
        py = torch.floor(w_[idx])[:, None] + offs[None, :, 0]
        dx = px + 0.5 - u[idx][:, None]
        dy = py + 0.5 - w_[idx][:, None]
        a = opac[idx][:, None] * torch.exp(-0.5 * (dx * dx + dy * dy) / (sig[:, None] ** 2))
        keep = (off_r[None, :] <= rad[:, None]) & (px >= 0) & (px < W) & (py >= 0) & (py < H) & (a >= 1 / 255)
        gi = idx[:, None].expand_as(keep)[keep]
        pix = (py[keep] * W + px[keep]).long()
        a = a[keep]
        zz = z[gi]
        order = torch.from_numpy(np.lexsort((zz.numpy(), pix.numpy())))
        pix, a, zz, gi = pix[order], a[order], zz[order], gi[order]
        logt = torch.log1p(-a)
        cum = torch.cumsum(logt, 0)
        start = torch.ones(len(pix), dtype=torch.bool)
        start[1:] = pix[1:] != pix[:-1]
        seg = torch.cumsum(start.long(), 0) - 1
        base = (cum - logt)[start]  # cumulative sum before each segment
        t_after = torch.exp(cum - base[seg])
        hit = t_after <= 1 - min_alpha
        # first hit per pixel
        first = torch.full((int(seg[-1]) + 1,), len(pix), dtype=torch.long)
        hi = torch.nonzero(hit)[:, 0]
        first.scatter_reduce_(0, seg[hi], hi, reduce="amin")
        good = first < len(pix)
        sel = first[good]
        d_img = torch.zeros(H * W, dtype=torch.float64)
        d_img[pix[sel]] = zz[sel]
        c_img = torch.zeros(H * W, 3)
        c_img[pix[sel]] = cols[gi[sel]]
        depth_out[v] = d_img.reshape(H, W).float()
        rgb_out[v] = c_img.reshape(H, W, 3)
    depth_out = torch.where(_smooth_mask(depth_out, max_depth_jump) & (depth_out > 0), depth_out,
                            torch.zeros_like(depth_out))
    return RenderedViews(rgb_out, depth_out, cams)


def fuse(views: RenderedViews, resolution: int = 160, trunc_voxels: float = 3.0, bounds: np.ndarray | None = None
         ) -> TSDFVolume:
    """Fuse rendered views into a :class:`TSDFVolume` (see the module doc).

    Args:
        views: from :func:`render_views`.
        resolution: voxels along the longest side of the bounds (≥ 8).
        trunc_voxels: truncation distance in voxels.
        bounds: ``[2, 3]`` world box (min, max); default from the observed points.

    Raises:
        ConfigError: no depth was observed (no Gaussian visible from the cameras), or a bad resolution.
    """
    if resolution < 8:
        raise ConfigError(f"mesh resolution must be >= 8 voxels, got {resolution}")
    cams = views.cameras
    depth = views.depth
    V, H, W = depth.shape
    valid = depth > 0
    if not bool(valid.any()):
        raise ConfigError("no surface was seen: the Gaussians render no opaque pixel from the cameras "
                          "(empty scene, or cameras looking away)")
    pts = cams.unproject(depth)[valid]  # [M, 3]
    cols = views.rgb[valid]
    if bounds is None:
        sample = pts if len(pts) <= 400_000 else pts[torch.randperm(len(pts), generator=torch.Generator()
                                                                    .manual_seed(0))[:400_000]]
        lo = torch.quantile(sample, 0.005, dim=0).numpy().astype(np.float64)
        hi = torch.quantile(sample, 0.995, dim=0).numpy().astype(np.float64)
    else:
        lo, hi = np.asarray(bounds[0], np.float64), np.asarray(bounds[1], np.float64)
    extent = float(np.max(hi - lo))
    if not extent > 0:
        extent = 1.0
    voxel = extent / resolution
    trunc = trunc_voxels * voxel
    lo = lo - 2 * trunc
    hi = hi + 2 * trunc
    dims = np.maximum(np.ceil((hi - lo) / voxel).astype(np.int64), 2)
    origin = lo + voxel / 2
    # active voxels: within the truncation band of an observed point
    inside = ((pts.numpy() >= lo) & (pts.numpy() < hi)).all(1)
    idx = np.floor((pts.numpy()[inside] - lo) / voxel).astype(np.int64)
    occ = np.zeros(dims, dtype=bool)
    occ[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    from scipy.ndimage import binary_dilation

    r = int(np.ceil(trunc_voxels)) + 1
    active = binary_dilation(occ, structure=np.ones((3, 3, 3), bool), iterations=r)
    act = np.argwhere(active)
    centres = torch.from_numpy(origin + act * voxel).float()  # [A, 3]
    tsdf_sum = torch.zeros(len(act))
    w_sum = torch.zeros(len(act))
    c_sum = torch.zeros(len(act), 3)
    c_w = torch.zeros(len(act))
    w2c = cams.w2c
    K = cams.K
    for v in range(V):
        p = centres @ w2c[v, :3, :3].T + w2c[v, :3, 3]
        z = p[:, 2]
        front = z > 1e-6
        uvw = p @ K[v].T
        zs = torch.where(front, z, torch.ones_like(z))
        u = torch.floor(uvw[:, 0] / zs).long()
        vv = torch.floor(uvw[:, 1] / zs).long()
        ok = front & (u >= 0) & (u < W) & (vv >= 0) & (vv < H)
        ii = torch.nonzero(ok)[:, 0]
        d = depth[v][vv[ii], u[ii]]
        sdf = d - z[ii]
        keep = (d > 0) & (sdf > -trunc)
        ii, sdf = ii[keep], sdf[keep]
        tsdf_sum.index_add_(0, ii, (sdf / trunc).clamp(-1, 1))
        w_sum.index_add_(0, ii, torch.ones_like(sdf))
        band = sdf.abs() < trunc
        jb = ii[band]
        c_sum.index_add_(0, jb, views.rgb[v][vv[jb], u[jb]])
        c_w.index_add_(0, jb, torch.ones(len(jb)))
    tsdf = np.ones(dims, dtype=np.float32)
    weight = np.zeros(dims, dtype=np.float32)
    color = np.zeros((*dims, 3), dtype=np.float32)
    seen = w_sum > 0
    a = act[seen.numpy()]
    tsdf[a[:, 0], a[:, 1], a[:, 2]] = (tsdf_sum[seen] / w_sum[seen]).numpy()
    weight[a[:, 0], a[:, 1], a[:, 2]] = w_sum[seen].numpy()
    cw = c_w > 0
    b = act[cw.numpy()]
    color[b[:, 0], b[:, 1], b[:, 2]] = (c_sum[cw] / c_w[cw, None]).numpy()
    del cols
    return TSDFVolume(tsdf, weight, color, origin.astype(np.float64), float(voxel), float(trunc))
