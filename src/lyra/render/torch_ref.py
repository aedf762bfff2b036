"""Pure-torch reference rasterizer for 3D Gaussians (differentiable, any device, tiled and chunked).

It follows gsplat's ``rasterize_mode="classic"`` pipeline (itself the INRIA 3DGS one) term by term, so
that the two backends agree to float precision:

1. **Projection (EWA).** World → camera with ``w2c``; Gaussians whose centre has z-depth outside
   ``[near, far]`` (this includes everything behind the camera) are culled. The 2D covariance is
   ``J Σ_cam Jᵀ + eps2d·I`` with ``J`` the Jacobian of the pinhole projection, evaluated at the centre
   whose ``x/z``, ``y/z`` are first clamped to the frustum widened by 30 % of the half-FoV on each side
   (``±1.3·tan(fov/2)`` for a centred principal point). ``eps2d = 0.3`` px² is the low-pass dilation.
   With ``rasterize_mode="antialiased"`` the opacity is multiplied by ``sqrt(det Σ / det(Σ + eps2d·I))``
   (Mip-Splatting), otherwise it is left alone.
2. **Footprint.** A Gaussian reaches ``radius = ceil(extend·sqrt(Σ2d_ii))`` pixels along each axis, with
   the opacity-aware ``extend = min(3.33, sqrt(2·ln(255·opacity)))``. Outside that box its alpha is below
   ``1/255`` and is skipped anyway, so the tiling below changes nothing but the speed.
3. **Compositing.** Per pixel (centre ``(i+0.5, j+0.5)``), Gaussians front to back by centre depth:
   ``alpha = min(0.999, opacity·exp(-½ dᵀΣ2d⁻¹d))``, skipped when ``alpha < 1/255``; transmittance
   ``T_k = Π_{l≤k}(1-alpha_l)``; the weight is ``T_{k-1}·alpha_k``, and the pixel stops (excluding the
   Gaussian that would bring ``T`` to ``≤ 1e-4``) exactly as gsplat/INRIA do. RGB ``= Σ w c``, alpha
   ``= Σ w``, expected depth ``= Σ w z / max(alpha, 1e-10)`` (``z`` = centre z-depth; 0 where alpha is 0).

Implementation: the image is cut into ``tile_size``² tiles; each visible Gaussian is listed in every tile
its footprint box touches (pairs made in depth order, then stably sorted by tile); tiles are processed in
batches of similar list length, padded to ``[tiles, K, tile, tile]``, with transmittance by ``cumprod``
along ``K`` (split into chunks along ``K`` with the transmittance carried over, and stopped once every
pixel of the batch is done). Under autograd each batch is checkpointed, so memory stays that of one
batch; gradients reach means, quaternions, scales, opacities, colours and SH coefficients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from lyra.errors import ConfigError
from lyra.gaussians.gaussians import quat_to_rotmat

#: alpha below this is skipped (gsplat's and INRIA's ``ALPHA_THRESHOLD``).
ALPHA_THRESHOLD = 1.0 / 255.0
#: per-Gaussian alpha is clamped to this (gsplat; INRIA's CUDA rasterizer uses 0.99).
MAX_ALPHA = 0.999
#: a pixel is done once its transmittance would drop to this or below (gsplat/INRIA).
MIN_TRANSMITTANCE = 1e-4
#: the footprint box never reaches further than this many standard deviations.
MAX_EXTEND = 3.33

# Real spherical-harmonic constants in the INRIA 3DGS / gsplat convention (degrees 1-3).
_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
       0.5462742152960396)
_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
       -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


# --------------------------------------------------------------------------- spherical harmonics
def sh_basis(dirs: Tensor, degree: int) -> Tensor:
    """Real SH basis values ``[..., (degree+1)² - 1]`` of degrees 1..``degree`` (≤ 3) for unit ``dirs`` [..., 3].

    Same order and signs as INRIA 3DGS and gsplat (l=1: ``-C1·y, C1·z, -C1·x``; ...). The constant
    degree-0 term ``SH_C0`` is left out: it is carried by ``Gaussians.colors``.
    """
    if not 0 <= degree <= 3:
        raise ConfigError(f"spherical harmonics of degree {degree} are not supported (0 to 3 are)")
    x, y, z = dirs.unbind(-1)
    out: list[Tensor] = []
    if degree >= 1:
        out += [-_C1 * y, _C1 * z, -_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [_C2[0] * x * y, _C2[1] * y * z, _C2[2] * (2 * zz - xx - yy), _C2[3] * x * z,
                _C2[4] * (xx - yy)]
    if degree >= 3:
        out += [_C3[0] * y * (3 * xx - yy), _C3[1] * x * y * z, _C3[2] * y * (4 * zz - xx - yy),
                _C3[3] * z * (2 * zz - 3 * xx - 3 * yy), _C3[4] * x * (4 * zz - xx - yy),
                _C3[5] * z * (xx - yy), _C3[6] * x * (xx - 3 * yy)]
    if not out:
        return dirs.new_zeros(*dirs.shape[:-1], 0)
    return torch.stack(out, dim=-1)


def sh_colors(colors: Tensor, sh_rest: Tensor | None, dirs: Tensor) -> Tensor:
    """View-dependent RGB ``[N, 3]`` of Gaussians seen along ``dirs`` [N, 3] (camera → Gaussian, any length).

    ``colors`` [N, 3] is the degree-0 colour (``SH_C0·f_dc + 0.5``); ``sh_rest`` [N, K, 3] the higher
    coefficients. With ``sh_rest`` the result is ``max(colors + Σ_k Y_k(dir)·sh_rest_k, 0)`` as in
    gsplat/INRIA; without it, ``colors`` unchanged.
    """
    if sh_rest is None or sh_rest.shape[1] == 0:
        return colors
    k = sh_rest.shape[1]
    degree = int(round(math.sqrt(k + 1))) - 1
    if (degree + 1) ** 2 - 1 != k:
        raise ConfigError(f"sh_rest has {k} coefficients per channel, which is not (d+1)^2-1 for any d")
    basis = sh_basis(F.normalize(dirs, dim=-1), degree)  # [N, K]
    return torch.clamp_min(colors + torch.einsum("nk,nkc->nc", basis, sh_rest), 0.0)


# --------------------------------------------------------------------------- projection
@dataclass
class Projected:
    """Screen-space Gaussians of one camera (only the visible ones, in input order).

    Attributes:
        ids: ``[M]`` indices into the input Gaussians.
        means2d: ``[M, 2]`` pixel coordinates ``(u, v)`` of the centres (pixel centres at +0.5).
        conics: ``[M, 3]`` upper triangle ``(a, b, c)`` of the inverse 2D covariance.
        depths: ``[M]`` z-depth of the centres.
        opacities: ``[M]`` opacities (times the compensation in antialiased mode).
        radii: ``[M, 2]`` integer footprint half-sizes in pixels (x, y).
    """

    ids: Tensor
    means2d: Tensor
    conics: Tensor
    depths: Tensor
    opacities: Tensor
    radii: Tensor


def project(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    K: Tensor,
    w2c: Tensor,
    width: int,
    height: int,
    near: float = 0.1,
    far: float = 500.0,
    eps2d: float = 0.3,
    rasterize_mode: str = "classic",
) -> Projected:
    """EWA-project Gaussians (``means`` [N,3], wxyz ``quats`` [N,4], linear ``scales`` [N,3],
    ``opacities`` [N]) into one pinhole camera (``K`` [3,3] pixels, ``w2c`` [4,4] OpenCV).

    Culls centres outside ``[near, far]`` in z, opacities below 1/255, degenerate covariances and
    footprints entirely outside the ``width x height`` image. Skew in ``K`` is ignored (as gsplat does).
    """
    if rasterize_mode not in ("classic", "antialiased"):
        raise ConfigError(f"rasterize_mode must be 'classic' or 'antialiased', got {rasterize_mode!r}")
    R, t = w2c[:3, :3], w2c[:3, 3]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    p = means @ R.T + t  # [N, 3]
    x, y, z = p.unbind(-1)
    keep = (z >= near) & (z <= far)
    ids = keep.nonzero()[:, 0]
    p, x, y, z = p[ids], x[ids], y[ids], z[ids]
    rot = R @ quat_to_rotmat(quats[ids])  # [M, 3, 3] camera-space rotation
    RS = rot * scales[ids, None, :]
    cov = RS @ RS.transpose(-1, -2)  # [M, 3, 3]

    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos, lim_x_neg = (width - cx) / fx + 0.3 * tan_fovx, cx / fx + 0.3 * tan_fovx
    lim_y_pos, lim_y_neg = (height - cy) / fy + 0.3 * tan_fovy, cy / fy + 0.3 * tan_fovy
    rz = 1.0 / z
    tx = z * torch.minimum(torch.maximum(x * rz, -lim_x_neg), lim_x_pos)
    ty = z * torch.minimum(torch.maximum(y * rz, -lim_y_neg), lim_y_pos)
    zero = torch.zeros_like(z)
    J = torch.stack([fx * rz, zero, -fx * tx * rz * rz, zero, fy * rz, -fy * ty * rz * rz], -1)
    J = J.reshape(-1, 2, 3)
    cov2d = J @ cov @ J.transpose(-1, -2)  # [M, 2, 2]
    a, b, c = cov2d[:, 0, 0], 0.5 * (cov2d[:, 0, 1] + cov2d[:, 1, 0]), cov2d[:, 1, 1]
    det_orig = a * c - b * b
    a, c = a + eps2d, c + eps2d
    det = a * c - b * b
    opac = opacities[ids]
    if rasterize_mode == "antialiased":
        opac = opac * torch.sqrt(torch.clamp_min(det_orig / det.clamp_min(1e-30), 0.0))
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], -1)

    with torch.no_grad():
        ok = (det > 0) & (opac >= ALPHA_THRESHOLD)
        extend = torch.sqrt(2.0 * torch.log(opac.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD))
        extend = extend.clamp_max(MAX_EXTEND)
        rx = torch.ceil(extend * torch.sqrt(a.clamp_min(0)))
        ry = torch.ceil(extend * torch.sqrt(c.clamp_min(0)))
        u, v = means2d[:, 0], means2d[:, 1]
        ok &= (u + rx > 0) & (u - rx < width) & (v + ry > 0) & (v - ry < height)
        ok &= torch.isfinite(rx) & torch.isfinite(ry)
        sel = ok.nonzero()[:, 0]
    det = det[sel]
    conics = torch.stack([c[sel] / det, -b[sel] / det, a[sel] / det], -1)
    return Projected(ids=ids[sel], means2d=means2d[sel], conics=conics, depths=z[sel], opacities=opac[sel],
                     radii=torch.stack([rx[sel], ry[sel]], -1).long())


# --------------------------------------------------------------------------- tiles
@dataclass
class TileBins:
    """Gaussian lists per tile. Gaussians are indexed in depth order (0 = nearest)."""

    tiles_x: int
    tiles_y: int
    gauss: Tensor  # [P] depth-rank of the Gaussian of each pair, grouped by tile, near to far
    offsets: Tensor  # [n_tiles] start of each tile's list in ``gauss``
    counts: Tensor  # [n_tiles] length of each tile's list


def bin_to_tiles(means2d: Tensor, radii: Tensor, width: int, height: int, tile_size: int) -> TileBins:
    """List every (depth-sorted) Gaussian in each ``tile_size``² tile its footprint box touches.

    ``means2d`` [M, 2] and ``radii`` [M, 2] must already be in depth order.
    """
    dev = means2d.device
    tiles_x, tiles_y = math.ceil(width / tile_size), math.ceil(height / tile_size)
    n_tiles = tiles_x * tiles_y
    m = means2d.detach()
    x0 = torch.floor((m[:, 0] - radii[:, 0]) / tile_size).clamp(0, tiles_x).long()
    x1 = torch.ceil((m[:, 0] + radii[:, 0]) / tile_size).clamp(0, tiles_x).long()
    y0 = torch.floor((m[:, 1] - radii[:, 1]) / tile_size).clamp(0, tiles_y).long()
    y1 = torch.ceil((m[:, 1] + radii[:, 1]) / tile_size).clamp(0, tiles_y).long()
    nx, ny = x1 - x0, y1 - y0
    n = nx * ny
    rank = torch.repeat_interleave(torch.arange(len(n), device=dev), n)
    start = torch.cumsum(n, 0) - n
    local = torch.arange(len(rank), device=dev) - start[rank]
    tile = (y0[rank] + local // nx[rank]) * tiles_x + x0[rank] + local % nx[rank]
    tile_sorted, perm = torch.sort(tile, stable=True)
    counts = torch.bincount(tile_sorted, minlength=n_tiles)
    offsets = torch.cumsum(counts, 0) - counts
    return TileBins(tiles_x, tiles_y, rank[perm], offsets, counts)


# --------------------------------------------------------------------------- compositing
def _composite_batch(
    mx: Tensor, my: Tensor, conic: Tensor, logo: Tensor, feat: Tensor, x0: Tensor, y0: Tensor,
    tile_size: int, k_chunk: int,
) -> Tensor:
    """Composite a batch of ``b`` tiles, each with a padded depth-sorted list of ``K`` Gaussians.

    Args:
        mx, my: ``[b, K]`` centres in pixels. conic: ``[b, K, 3]``. logo: ``[b, K]`` log-opacity
            (very negative for padding). feat: ``[b, K, C]`` channels to accumulate.
        x0, y0: ``[b]`` pixel origin of each tile.
    Returns:
        ``[b, tile, tile, C]`` accumulated ``Σ w·feat`` (rows = y).
    """
    b, K = mx.shape
    ar = torch.arange(tile_size, device=mx.device, dtype=mx.dtype) + 0.5
    u = x0[:, None].to(mx.dtype) + ar  # [b, S] pixel centres
    v = y0[:, None].to(mx.dtype) + ar
    out = feat.new_zeros(b, tile_size * tile_size, feat.shape[-1])
    T_carry = None
    log_thresh = math.log(ALPHA_THRESHOLD)
    log_max = math.log(MAX_ALPHA)
    for k0 in range(0, K, k_chunk):
        sl = slice(k0, k0 + k_chunk)
        ca, cb, cc = conic[:, sl].unbind(-1)  # [b, k]
        dx = u[:, None, :] - mx[:, sl, None]  # [b, k, S]
        dy = v[:, None, :] - my[:, sl, None]
        px = -0.5 * ca[..., None] * dx * dx  # [b, k, S]   (x along columns)
        py = logo[:, sl, None] - 0.5 * cc[..., None] * dy * dy  # [b, k, S] (y along rows)
        # log alpha before clamping = log(o) - ½(a dx² + 2 b dx dy + c dy²)   [b, k, S(y), S(x)]
        la = torch.addcmul(px[:, :, None, :] + py[:, :, :, None], (-cb[..., None] * dy)[..., None],
                           dx[:, :, None, :])
        alpha = torch.where(la >= log_thresh, torch.exp(la.clamp_max(log_max)), 0.0)
        T = torch.cumprod(1.0 - alpha, dim=1)
        if T_carry is not None:
            T = T * T_carry[:, None]
            T_prev = torch.cat([T_carry[:, None], T[:, :-1]], 1)
        else:
            T_prev = torch.cat([torch.ones_like(T[:, :1]), T[:, :-1]], 1)
        w = torch.where(T > MIN_TRANSMITTANCE, T_prev - T, 0.0)  # [b, k, S, S]
        k = w.shape[1]
        out = out + torch.bmm(w.reshape(b, k, -1).transpose(1, 2), feat[:, sl])
        T_carry = T[:, -1]
        if k0 + k_chunk < K and not bool((T_carry > MIN_TRANSMITTANCE).any()):
            break  # every pixel of the batch is done: later Gaussians are excluded anyway
    return out.reshape(b, tile_size, tile_size, -1)


def rasterize(
    proj: Projected,
    colors: Tensor,
    width: int,
    height: int,
    tile_size: int = 8,
    max_batch_elements: int = 1 << 19,
) -> tuple[Tensor, Tensor, Tensor]:
    """Composite projected Gaussians (``colors`` [M, 3] aligned with ``proj``) into one image.

    ``max_batch_elements`` bounds ``tiles × K × tile_size²`` per step (memory ≈ 40 bytes × that, per
    step; under autograd each step is recomputed in backward instead of stored).

    Returns:
        rgb ``[H, W, 3]`` (not composited over a background), expected depth ``[H, W]``, alpha ``[H, W]``.
    """
    if tile_size < 1 or max_batch_elements < 1:
        raise ConfigError("tile_size and max_batch_elements must be positive")
    dev, dtype = colors.device, colors.dtype
    S, P = tile_size, tile_size * tile_size
    tiles_x, tiles_y = math.ceil(width / S), math.ceil(height / S)
    n_tiles = tiles_x * tiles_y
    chans = 5  # r, g, b, z, 1
    order = torch.argsort(proj.depths.detach(), stable=True)
    means2d, conics = proj.means2d[order], proj.conics[order]
    logo = torch.log(proj.opacities[order])
    feat = torch.cat([colors[order], proj.depths[order, None], torch.ones_like(logo)[:, None]], -1)
    bins = bin_to_tiles(means2d, proj.radii[order], width, height, S)

    counts = bins.counts
    tile_order = torch.argsort(counts, descending=True, stable=True)
    n_active = int((counts > 0).sum())
    counts_sorted = counts[tile_order].tolist()
    use_ckpt = torch.is_grad_enabled() and any(
        t.requires_grad for t in (means2d, conics, logo, feat))
    tile_ids, outs = [], []
    i = 0
    while i < n_active:
        kmax = counts_sorted[i]
        k_chunk = max(1, min(kmax, max_batch_elements // P))
        nb = max(1, min(n_active - i, max_batch_elements // (k_chunk * P)))
        tiles = tile_order[i:i + nb]
        ar = torch.arange(kmax, device=dev)
        valid = ar[None, :] < counts[tiles][:, None]  # [b, K]
        idx = torch.where(valid, bins.offsets[tiles][:, None] + ar[None, :], 0)
        g = bins.gauss[idx] if len(bins.gauss) else torch.zeros_like(idx)
        args = (
            means2d[g, 0], means2d[g, 1], conics[g],
            torch.where(valid, logo[g], torch.full_like(logo[g], -1e4)), feat[g],
            (tiles % tiles_x) * S, (tiles // tiles_x) * S,
        )
        if use_ckpt:
            o = checkpoint(_composite_batch, *args, S, k_chunk, use_reentrant=False)
        else:
            o = _composite_batch(*args, S, k_chunk)
        tile_ids.append(tiles)
        outs.append(o.reshape(nb, P, chans))
        i += nb
    full = torch.zeros(n_tiles, P, chans, device=dev, dtype=dtype)
    if outs:
        full = full.index_copy(0, torch.cat(tile_ids), torch.cat(outs))
    img = full.reshape(tiles_y, tiles_x, S, S, chans).permute(0, 2, 1, 3, 4)
    img = img.reshape(tiles_y * S, tiles_x * S, chans)[:height, :width]
    alpha = img[..., 4]
    depth = img[..., 3] / alpha.clamp_min(1e-10)
    return img[..., :3], depth, alpha


def render_torch(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    sh_rest: Tensor | None,
    K: Tensor,
    w2c: Tensor,
    width: int,
    height: int,
    near: float = 0.1,
    far: float = 500.0,
    eps2d: float = 0.3,
    rasterize_mode: str = "classic",
    tile_size: int = 8,
    max_batch_elements: int = 1 << 19,
) -> tuple[Tensor, Tensor, Tensor]:
    """Render Gaussians into a flat batch of C cameras with the torch reference.

    Args:
        means, quats, scales, opacities, colors, sh_rest: the fields of ``Gaussians`` (``[N, ...]``).
        K: ``[C, 3, 3]`` intrinsics in pixels. w2c: ``[C, 4, 4]`` world-to-camera (OpenCV).
    Returns:
        rgb ``[C, H, W, 3]`` (no background), expected depth ``[C, H, W]``, alpha ``[C, H, W]``.
    """
    dtype = means.dtype
    K, w2c = K.to(means.device, dtype), w2c.to(means.device, dtype)
    campos = torch.linalg.inv(w2c)[:, :3, 3]
    rgbs, depths, alphas = [], [], []
    for c in range(K.shape[0]):
        proj = project(means, quats, scales, opacities, K[c], w2c[c], width, height, near, far, eps2d,
                       rasterize_mode)
        sr = None if sh_rest is None else sh_rest[proj.ids]
        col = sh_colors(colors[proj.ids], sr, means[proj.ids] - campos[c])
        rgb, depth, alpha = rasterize(proj, col, width, height, tile_size, max_batch_elements)
        rgbs.append(rgb)
        depths.append(depth)
        alphas.append(alpha)
    return torch.stack(rgbs), torch.stack(depths), torch.stack(alphas)
