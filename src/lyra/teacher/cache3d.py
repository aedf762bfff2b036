"""The 3D cache: one view unprojected into a coloured point cloud, forward-warped into any cameras.

GEN3C (LYRA_FACTS "Teacher") conditions its video model on renderings of a 3D cache: the input
image is lifted to a point cloud with its depth and re-rendered ("forward-warped") into every camera
of a target trajectory, giving a warped RGB video and a validity mask. This module does that for one
input view.

:meth:`PointCache.from_depth` unprojects every pixel centre at its z-depth (OpenCV cameras, see
:mod:`lyra.geometry.cameras`). Each point keeps its *footprint*: the world vectors to the points of
the next pixel along x and y (a surface patch, so a slanted floor stretches correctly in a new view).
Pixels on depth discontinuities (:func:`discontinuity_mask`) draw no colour — an edge pixel's colour
mixes both sides, and a blurred depth edge would be stretched into a "curtain" — but stay as
*occluders* in the z-buffer, so the background does not leak through a foreground's edge. A ring of
occluders beyond the image border continues the border's surfaces (at the border's depth), so an
object cut by the frame edge still hides what its unseen part would hide.

:func:`warp` splats into a batch of cameras, vectorised (``scatter_reduce(amin)`` for the z-buffer,
``index_add_`` for colours), CPU or CUDA, in chunks of cameras:

1. each point projects to ``(u, v, z)``; its footprint projects (Jacobian of the projection times the
   two footprint vectors) to half-extents ``(rx, ry)`` in target pixels;
2. it splats onto the pixel centres within ``s = 2r`` (per axis; ``s = 1``, bilinear on 2×2 pixels,
   unless the surface is stretched by more than 25 %; at most ``max_footprint``) with tent weights
   ``(1 − |dx|/sx)(1 − |dy|/sy)`` — tents of a lattice of spacing ``s`` sum to one, so magnified
   surfaces stay hole-free;
3. z-buffer: per pixel the nearest depth among the *cores* covering its centre (a core is the
   footprint, at least half a pixel, enlarged 5 %; occluders have cores too); a pixel no core reaches
   takes the nearest core depth among its 3×3 neighbours;
4. soft z-test: contributions within ``depth_tolerance`` (relative) of that depth are kept and their
   weights normalised; the rest (hidden surfaces, tails of nearer surfaces' tents) are dropped;
5. a pixel is valid when the core of a coloured point of the nearest surface covers it, or its kept
   weights sum to ``min_weight``; ``depth`` is the z-buffer depth.

``foreground_masking`` (GEN3C's option): a mesh over the band of pixels around depth discontinuities
(curtains included) is rasterised into every target (:func:`rasterize_depth`); warped pixels more than
``foreground_threshold`` (relative) behind it are marked invalid — a conservative mask, useful when
discontinuities are not dropped.

Known limit: a surface the input view did not see cannot hide anything — when it would (an object
outside the input view swinging into the frame, the floor under a table seen past its legs), the
warp shows the background the cache holds there and marks it valid.

Images are ``[3, H, W]`` in ``[0, 1]``; depth is z-depth in world units (OpenCV, z forward).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.errors import ConfigError
from lyra.geometry.cameras import Cameras

__all__ = ["PointCache", "WarpResult", "discontinuity_mask", "warp"]


# --------------------------------------------------------------------------- discontinuities
def _edge_flags(inv: Tensor, z: Tensor, dim: int, rel_jump: float, hard_jump: float, slope_ratio: float) -> Tensor:
    """Flags ``[.., n-1]`` of the edges between neighbours along ``dim`` (1: columns, 0: rows).

    An edge is a discontinuity when the depth ratio across it exceeds ``1 + hard_jump``, or exceeds
    ``1 + rel_jump`` while its inverse-depth step is ``slope_ratio`` times larger than the smaller
    of the steps on either side (a plane has an affine inverse depth in the image, so its steps are
    equal: slanted planes are not cut; the edge of an object in front of a wall is).
    """
    n = inv.shape[dim]
    a = inv.narrow(dim, 0, n - 1)
    b = inv.narrow(dim, 1, n - 1)
    za = z.narrow(dim, 0, n - 1)
    zb = z.narrow(dim, 1, n - 1)
    ratio = torch.maximum(za, zb) / torch.minimum(za, zb) - 1.0
    step = (b - a).abs()
    inf = torch.full_like(step.narrow(dim, 0, 1), math.inf)
    prev = torch.cat([inf, step.narrow(dim, 0, n - 2)], dim)
    nxt = torch.cat([step.narrow(dim, 1, n - 2), inf], dim)
    ref = torch.minimum(prev, nxt)
    ref = torch.where(torch.isinf(ref), torch.zeros_like(ref), ref)
    return (ratio > hard_jump) | ((ratio > rel_jump) & (step > slope_ratio * ref))


def discontinuity_mask(
    depth: Tensor,
    rel_jump: float = 0.03,
    hard_jump: float = 0.15,
    slope_ratio: float = 3.0,
    dilate: int = 0,
) -> Tensor:
    """Pixels ``[H, W]`` (bool) on a depth discontinuity of ``depth`` ``[H, W]`` (positive, finite).

    A pixel is flagged when one of the edges to its 4 neighbours is a discontinuity (see
    :func:`_edge_flags`: relative jump above ``hard_jump``, or above ``rel_jump`` and ``slope_ratio``
    times the neighbouring inverse-depth steps). Both sides of a sharp edge are flagged, and every
    pixel of a blurred ramp between two depths (an estimated depth map's "curtain"). ``dilate`` grows
    the flagged set by that many pixels (square neighbourhood).
    """
    if depth.dim() != 2:
        raise ValueError(f"depth must be [H, W], got {tuple(depth.shape)}")
    H, W = depth.shape
    z = depth.float()
    inv = 1.0 / z
    flag = torch.zeros(H, W, dtype=torch.bool, device=depth.device)
    if W >= 3:
        e = _edge_flags(inv, z, 1, rel_jump, hard_jump, slope_ratio)
        flag[:, :-1] |= e
        flag[:, 1:] |= e
    if H >= 3:
        e = _edge_flags(inv, z, 0, rel_jump, hard_jump, slope_ratio)
        flag[:-1, :] |= e
        flag[1:, :] |= e
    if dilate > 0:
        k = 2 * dilate + 1
        flag = F.max_pool2d(flag[None, None].float(), k, stride=1, padding=dilate)[0, 0] > 0
    return flag


# --------------------------------------------------------------------------- the cache
@dataclass
class PointCache:
    """A coloured point cloud lifted from one view.

    Attributes:
        points: world positions ``[N, 3]``.
        colors: RGB ``[N, 3]`` in ``[0, 1]``.
        tangents: ``[N, 2, 3]`` world-space footprint of each point: the vectors to the points of the
            next source pixel along image x and along image y (central differences on the surface;
            the fronto-parallel pixel pitch where a neighbour is missing). They give the point's
            footprint in any target view, stretched and sheared as the surface is seen there.
        keep: ``[H, W]`` bool, which source pixels became points (row-major order of ``points``).
        source: the source camera (batch shape ``[]``).
        occluders: ``[M, 3]`` world points that hide what is behind them but draw no colour (the
            pixels dropped on discontinuities: an edge pixel's colour is unreliable, yet the surface
            is there), or ``None``.
        occluder_tangents: ``[M, 2, 3]`` their footprints (fronto-parallel pixel pitch).
        mesh_vertices: ``[V, 3]`` world vertices of the discontinuity band's mesh, or ``None``.
        mesh_faces: ``[F, 3]`` long, triangles into ``mesh_vertices`` (for ``foreground_masking``).
        source_depth: ``[H, W]`` the source view's z-depth (sky at ``far``, 0 where none), for
            ``warp(..., visibility_check=True)``.
    """

    points: Tensor
    colors: Tensor
    tangents: Tensor
    keep: Tensor
    source: Cameras
    occluders: Tensor | None = None
    occluder_tangents: Tensor | None = None
    mesh_vertices: Tensor | None = None
    mesh_faces: Tensor | None = None
    source_depth: Tensor | None = None

    def __len__(self) -> int:
        return self.points.shape[0]

    @property
    def device(self) -> torch.device:
        return self.points.device

    @property
    def radius(self) -> Tensor:
        """``[N]`` world-space footprint radius: half the square root of the footprint's area."""
        return 0.5 * torch.linalg.cross(self.tangents[:, 0], self.tangents[:, 1], dim=-1).norm(dim=-1).sqrt()

    def to(self, device: torch.device | str) -> PointCache:
        def mv(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device)

        return PointCache(self.points.to(device), self.colors.to(device), self.tangents.to(device),
                          self.keep.to(device), self.source.to(device), mv(self.occluders),
                          mv(self.occluder_tangents), mv(self.mesh_vertices), mv(self.mesh_faces),
                          mv(self.source_depth))

    @classmethod
    def from_depth(
        cls,
        image: Tensor,
        depth: Tensor,
        camera: Cameras,
        *,
        mask: Tensor | None = None,
        far: float | None = 500.0,
        drop_discontinuities: bool = True,
        rel_jump: float = 0.03,
        hard_jump: float = 0.15,
        slope_ratio: float = 3.0,
        dilate: int = 0,
        edge_occluders: bool = True,
        border_occluders: float = 0.25,
        boundary_band: int = 2,
    ) -> PointCache:
        """Unproject every pixel of ``image`` ``[3, H, W]`` at its z-depth ``depth`` ``[H, W]``.

        Args:
            camera: the view's camera, batch shape ``[]``, of size ``W x H``.
            mask: optional ``[H, W]`` bool, pixels to use (e.g. a depth confidence threshold).
            far: depths that are not finite or beyond ``far`` (sky) are placed at ``far``, so that they
                warp like a distant backdrop; ``None`` drops them instead. Non-positive depths are
                always dropped.
            drop_discontinuities: drop the pixels flagged by :func:`discontinuity_mask` (with
                ``rel_jump``, ``hard_jump``, ``slope_ratio``, ``dilate``).
            edge_occluders: keep the dropped discontinuity pixels as occluders (z-buffer only), so
                that the background does not show through the foreground's dropped edge.
            border_occluders: assume the surfaces at the image border continue beyond it, at the border's
                depth, over this fraction of the image's larger side (occluders every 4 pixels): an
                object cut by the frame edge then hides the background where its unseen part would be
                in a view that sees past the edge. 0: off.
            boundary_band: half-width in pixels of the band around discontinuities that is meshed for
                ``warp(..., foreground_masking=True)``; 0 builds no mesh.
        """
        if image.dim() != 3 or image.shape[0] != 3:
            raise ConfigError(f"image must be [3, H, W], got {tuple(image.shape)}")
        H, W = image.shape[-2:]
        if tuple(depth.shape) != (H, W):
            raise ConfigError(f"depth must be [H, W] = [{H}, {W}] like the image, got {tuple(depth.shape)}")
        if len(camera.shape) != 0:
            raise ConfigError(f"from_depth needs one camera (batch shape []), got {tuple(camera.shape)}")
        if (camera.width, camera.height) != (W, H):
            raise ConfigError(f"camera is {camera.width}x{camera.height} but the image is {W}x{H}")
        device = image.device
        camera = camera.to(device)
        z = depth.to(device=device, dtype=torch.float32)
        keep = (z > 0) & ~torch.isnan(z)
        if far is not None:
            sky = torch.isposinf(z) | (z > far)
            z = torch.where(sky, torch.full_like(z, far), z)
        else:
            keep &= torch.isfinite(z)
        z = torch.where(keep, z, torch.ones_like(z))  # placeholder depth for dropped pixels
        has_depth = keep
        if mask is not None:
            keep = keep & mask.to(device=device, dtype=torch.bool)
        edges = discontinuity_mask(z, rel_jump, hard_jump, slope_ratio, dilate) if drop_discontinuities else None
        if edges is not None:
            keep = keep & ~edges

        world = camera.unproject(z)  # [H, W, 3]
        # fronto-parallel pixel pitch: the ray difference of one pixel step, at the point's depth
        pitch = camera.c2w[:3, :3] @ torch.linalg.inv(camera.K)[:, :2]  # [3, 2]
        fronto = pitch.t()[None, None] * z[..., None, None]  # [H, W, 2, 3]
        tangents = torch.stack([_surface_step(world, has_depth, fronto[..., 0, :], 1),
                                _surface_step(world, has_depth, fronto[..., 1, :], 0)], -2)
        colors = image.to(torch.float32).permute(1, 2, 0)
        pts, cols, tan = world[keep], colors[keep], tangents[keep]
        occ, occ_t = [], []
        if edges is not None and edge_occluders:
            hide = edges & has_depth & (mask.to(device=device, dtype=torch.bool) if mask is not None else True)
            occ.append(world[hide])
            occ_t.append(fronto[hide])
        ring = int(round(border_occluders * max(H, W)))
        if ring > 0:
            bp, bt = _border_ring(camera, z, has_depth, ring, stride=4)
            occ.append(bp)
            occ_t.append(bt)
        occ = torch.cat(occ).contiguous() if occ else None
        occ_t = torch.cat(occ_t).contiguous() if occ_t else None

        mv = mf = None
        if boundary_band > 0:
            base = edges if edges is not None else discontinuity_mask(z, rel_jump, hard_jump, slope_ratio)
            mv, mf = _band_mesh(world, base, has_depth, boundary_band)
        src_depth = torch.where(has_depth, z, torch.zeros_like(z))
        return cls(pts.contiguous(), cols.contiguous(), tan.contiguous(), keep, camera, occ, occ_t, mv, mf, src_depth)


def _border_ring(camera: Cameras, z: Tensor, valid: Tensor, width: int, stride: int) -> tuple[Tensor, Tensor]:
    """Occluders beyond the image border: one point per ``stride × stride`` block of a ring ``width``
    pixels wide, at the block centre's ray and the depth of the nearest border pixel.

    Returns points ``[M, 3]`` and footprints ``[M, 2, 3]`` (the block's fronto-parallel extent, so
    that its core never reaches a pixel centre inside the image).
    """
    H, W = z.shape
    device = z.device
    half = stride / 2
    k = torch.arange(max(1, math.ceil(width / stride)), device=device, dtype=torch.float32)
    across = torch.arange(-width + half, W + width, stride, device=device, dtype=torch.float32)
    down = torch.arange(half, H, stride, device=device, dtype=torch.float32)
    bands = [
        (across[None, :].expand(len(k), -1), (-half - stride * k)[:, None].expand(-1, len(across))),  # top
        (across[None, :].expand(len(k), -1), (H + half + stride * k)[:, None].expand(-1, len(across))),  # bottom
        ((-half - stride * k)[:, None].expand(-1, len(down)), down[None, :].expand(len(k), -1)),  # left
        ((W + half + stride * k)[:, None].expand(-1, len(down)), down[None, :].expand(len(k), -1)),  # right
    ]
    u = torch.cat([b[0].reshape(-1) for b in bands])
    v = torch.cat([b[1].reshape(-1) for b in bands])
    i = u.floor().long().clamp(0, W - 1)
    j = v.floor().long().clamp(0, H - 1)
    ok = valid[j, i]
    u, v, d = u[ok], v[ok], z[j[ok], i[ok]]
    Kinv = torch.linalg.inv(camera.K)
    R = camera.c2w[:3, :3]
    pix = torch.stack([u, v, torch.ones_like(u)], -1)
    pts = (pix @ Kinv.t() @ R.t()) * d[:, None] + camera.c2w[:3, 3]
    pitch = (R @ Kinv[:, :2]).t() * stride  # [2, 3]
    return pts, pitch[None] * d[:, None, None]


def _surface_step(world: Tensor, valid: Tensor, fallback: Tensor, dim: int) -> Tensor:
    """World vector ``[H, W, 3]`` from a pixel's point to the next one along ``dim`` (1: x, 0: y).

    Central difference where both neighbours have a depth, one-sided where one has, ``fallback``
    where none has.
    """
    n = world.shape[dim]
    idx = torch.arange(n, device=world.device)
    first = (idx == 0).view(-1, 1) if dim == 0 else (idx == 0).view(1, -1)
    last = (idx == n - 1).view(-1, 1) if dim == 0 else (idx == n - 1).view(1, -1)
    fwd = world.roll(-1, dim) - world
    bwd = world - world.roll(1, dim)
    fwd_ok = (valid & valid.roll(-1, dim) & ~last)[..., None]
    bwd_ok = (valid & valid.roll(1, dim) & ~first)[..., None]
    return torch.where(fwd_ok & bwd_ok, 0.5 * (fwd + bwd), torch.where(fwd_ok, fwd, torch.where(bwd_ok, bwd, fallback)))


def _band_mesh(world: Tensor, edges: Tensor, valid: Tensor, band: int) -> tuple[Tensor, Tensor]:
    """Triangles over the 2×2 pixel quads touching the band of ``band`` pixels around ``edges``.

    Returns vertices ``[V, 3]`` and faces ``[F, 3]`` (two triangles per quad, all four corners valid).
    The mesh connects neighbouring pixels across discontinuities: it contains the curtains.
    """
    H, W = edges.shape
    k = 2 * band + 1
    zone = F.max_pool2d(edges[None, None].float(), k, stride=1, padding=band)[0, 0] > 0
    quad = (zone[:-1, :-1] | zone[:-1, 1:] | zone[1:, :-1] | zone[1:, 1:])
    quad &= valid[:-1, :-1] & valid[:-1, 1:] & valid[1:, :-1] & valid[1:, 1:]
    jj, ii = torch.nonzero(quad, as_tuple=True)
    if jj.numel() == 0:
        return world.new_zeros(0, 3), torch.zeros(0, 3, dtype=torch.long, device=world.device)
    tl = jj * W + ii
    tr, bl, br = tl + 1, tl + W, tl + W + 1
    faces = torch.cat([torch.stack([tl, tr, bl], 1), torch.stack([tr, br, bl], 1)], 0)
    used, inverse = torch.unique(faces, return_inverse=True)
    return world.reshape(-1, 3)[used].contiguous(), inverse.reshape(-1, 3)


# --------------------------------------------------------------------------- warping
#: Target spacing of neighbouring points (pixels) up to which plain bilinear splatting (s = 1) is used.
_BILINEAR_STRETCH = 1.25
#: Cores (the pixels a point claims in the z-buffer) are its footprint enlarged by this factor, so that
#: neighbouring cores overlap slightly and a continuous surface leaves no pixel unclaimed.
_CORE_MARGIN = 1.05


@dataclass
class WarpResult:
    """Forward-warped views of a :class:`PointCache` for cameras of batch shape ``[...]``.

    Attributes:
        rgb: ``[..., 3, H, W]`` in ``[0, 1]``; invalid pixels hold the fill value.
        mask: ``[..., H, W]`` bool, pixels the cache covers.
        depth: ``[..., H, W]`` z-depth in the target camera of the nearest surface, 0 where invalid.
        weight: ``[..., H, W]`` float, sum of the splat weights kept per pixel (a soft coverage).
    """

    rgb: Tensor
    mask: Tensor
    depth: Tensor
    weight: Tensor


def _project(points: Tensor, K: Tensor, w2c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``u, v, z`` ``[m, N]`` of world points ``[N, 3]`` in cameras ``K [m,3,3]``, ``w2c [m,4,4]``."""
    cam = torch.matmul(points[None], w2c[:, :3, :3].transpose(1, 2)) + w2c[:, None, :3, 3]
    x, y, z = cam.unbind(-1)
    zs = torch.where(z.abs() < 1e-12, torch.full_like(z, 1e-12), z)
    fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]
    u = (fx * x + K[:, 0, 1, None] * y) / zs + K[:, 0, 2, None]
    v = fy * y / zs + K[:, 1, 2, None]
    return u, v, z


@dataclass
class _Pairs:
    """The (camera, point) pairs of a chunk that can reach the image, flattened to ``[P]``."""

    u: Tensor
    v: Tensor
    z: Tensor
    rx: Tensor  # footprint half-extent along x, target pixels
    ry: Tensor  # ... along y
    sx: Tensor  # splat support along x, target pixels
    sy: Tensor
    base: Tensor  # camera index · H · W
    point: Tensor  # point index

    def take(self, sel: Tensor | None) -> _Pairs:
        if sel is None:
            return self
        return _Pairs(*(getattr(self, f.name).index_select(0, sel) for f in dataclasses.fields(self)))


def _pairs(points: Tensor, tangents: Tensor, K: Tensor, w2c: Tensor, H: int, W: int, near: float,
           max_footprint: int) -> _Pairs:
    """Project points and their footprints (``tangents [N, 2, 3]``) into the cameras; keep the pairs
    in front of the camera whose splat can reach the image."""
    N = points.shape[0]
    R = w2c[:, :3, :3]
    cam = torch.matmul(points[None], R.transpose(1, 2)) + w2c[:, None, :3, 3]  # [m, N, 3]
    tc = torch.matmul(tangents.reshape(1, 2 * N, 3), R.transpose(1, 2)).reshape(-1, N, 2, 3)
    x, y, z = cam.unbind(-1)
    zs = torch.where(z > near, z, torch.ones_like(z))
    fx, fy, sk, cx, cy = (K[:, i, j, None] for i, j in ((0, 0), (1, 1), (0, 1), (0, 2), (1, 2)))
    u = (fx * x + sk * y) / zs + cx
    v = fy * y / zs + cy
    # the footprint parallelogram's half-extents: Jacobian of the projection times the tangents
    tx, ty, tz = tc.unbind(-1)  # [m, N, 2]
    du = (fx[..., None] * tx + sk[..., None] * ty - (u - cx)[..., None] * tz) / zs[..., None]
    dv = (fy[..., None] * ty - (v - cy)[..., None] * tz) / zs[..., None]
    rx = 0.5 * du.abs().sum(-1)
    ry = 0.5 * dv.abs().sum(-1)
    sx = torch.where(2 * rx > _BILINEAR_STRETCH, 2 * rx, torch.ones_like(rx)).clamp(1.0, float(max_footprint))
    sy = torch.where(2 * ry > _BILINEAR_STRETCH, 2 * ry, torch.ones_like(ry)).clamp(1.0, float(max_footprint))
    valid = (z > near) & (u > -sx) & (u < W + sx) & (v > -sy) & (v < H + sy)
    idx = torch.nonzero(valid.reshape(-1), as_tuple=True)[0]
    cam_i = torch.div(idx, N, rounding_mode="floor")
    u, v, z, rx, ry, sx, sy = (t.reshape(-1).index_select(0, idx) for t in (u, v, z, rx, ry, sx, sy))
    return _Pairs(u, v, z, rx, ry, sx, sy, cam_i * (H * W), idx - cam_i * N)


def _window(p: _Pairs, n: int, H: int, W: int) -> tuple[Tensor, ...]:
    """``n`` pixel columns and rows per pair, starting at the first pixel centre within ``s`` of it.

    Returns ``row`` ``[P, n]`` (flat offsets ``base + j·W``, clamped), ``col`` ``[P, n]`` (clamped),
    ``dx``, ``dy`` ``[P, n]`` (pixel centre minus point) and the in-image flags ``inx``, ``iny``.
    """
    offs = torch.arange(n, device=p.u.device)
    pi = torch.ceil(p.u - p.sx - 0.5).long()[:, None] + offs
    pj = torch.ceil(p.v - p.sy - 0.5).long()[:, None] + offs
    dx = (pi + 0.5) - p.u[:, None]
    dy = (pj + 0.5) - p.v[:, None]
    inx = (pi >= 0) & (pi < W)
    iny = (pj >= 0) & (pj < H)
    return p.base[:, None] + pj.clamp(0, H - 1) * W, pi.clamp(0, W - 1), dx, dy, inx, iny


def _groups(p: _Pairs, max_footprint: int):
    """Split the pairs by window width ``n = ceil(2 max(sx, sy))`` (2: bilinear); yields ``(n, pairs)``."""
    nwin = torch.ceil(2 * torch.maximum(p.sx, p.sy) - 1e-4).long().clamp_min(2)
    for n in range(2, int(math.ceil(2 * max_footprint)) + 1):
        sel = torch.nonzero(nwin == n, as_tuple=True)[0]
        if sel.numel() == 0:
            continue
        yield n, p.take(None if sel.numel() == nwin.numel() else sel)


def _scatter_cores(zbuf: Tensor, g: _Pairs, window: tuple[Tensor, ...]) -> None:
    """z-buffer (``amin`` into ``zbuf``) of the core footprints of the pairs ``g``: the window pixels
    whose centres lie within ``max(r, 0.5)`` (× 1.05) of the point along x and along y."""
    row, col, dx, dy, inx, iny = window
    cx = (dx.abs() <= g.rx.clamp_min(0.5)[:, None] * _CORE_MARGIN) & inx
    cy = (dy.abs() <= g.ry.clamp_min(0.5)[:, None] * _CORE_MARGIN) & iny
    for a in range(row.shape[1]):
        zc = torch.where(cy[:, a, None] & cx, g.z[:, None], math.inf)
        zbuf.scatter_reduce_(0, (row[:, a, None] + col).reshape(-1), zc.reshape(-1), reduce="amin")


def _splat_chunk(
    cache: PointCache,
    K: Tensor,
    w2c: Tensor,
    H: int,
    W: int,
    depth_tolerance: float,
    max_footprint: int,
    near: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Splat the cache into ``m`` cameras.

    Returns the sums ``[4, m, H, W]`` of the kept weights ``w`` and of ``w · rgb``, the reference depth
    ``[m, H, W]`` of the soft z-test (nearest core depth, else the nearest core depth among the 3×3
    neighbours, else inf) and ``[m, H, W]`` bool, whether the core of a coloured point (not an occluder)
    of the nearest surface covers the pixel.
    """
    m = K.shape[0]
    total = m * H * W
    pc = _pairs(cache.points, cache.tangents, K, w2c, H, W, near, max_footprint)
    zbuf = torch.full((total,), math.inf, device=K.device)
    groups = [(g, _window(g, n, H, W)) for n, g in _groups(pc, max_footprint)]
    for g, window in groups:
        _scatter_cores(zbuf, g, window)
    zcolor = zbuf.reshape(m, H, W)
    if cache.occluders is not None and cache.occluders.shape[0] > 0:
        zcolor = zcolor.clone()
        po = _pairs(cache.occluders, cache.occluder_tangents, K, w2c, H, W, near, max_footprint)
        for n, g in _groups(po, max_footprint):
            _scatter_cores(zbuf, g, _window(g, n, H, W))

    # pixels no core reaches take the nearest core depth around them
    zcore = zbuf.reshape(m, H, W)
    zref = torch.where(torch.isinf(zcore), _min3x3(zcore), zcore).reshape(-1)

    acc = torch.zeros(4, total, device=K.device)
    colors = cache.colors.t()
    for g, (row, col, dx, dy, inx, iny) in groups:
        n = row.shape[1]
        wx = torch.where(inx, (1 - dx.abs() / g.sx[:, None]).clamp_min(0), 0.0)
        wy = torch.where(iny, (1 - dy.abs() / g.sy[:, None]).clamp_min(0), 0.0)
        vals = torch.cat([torch.ones(1, g.z.numel(), device=K.device), colors.index_select(1, g.point)], 0)
        zmin, zmax = g.z / (1 + depth_tolerance), g.z / (1 - depth_tolerance)  # zref range keeping a point
        for a in range(n):
            for b in range(n):
                pix = row[:, a] + col[:, b]
                zr = zref.index_select(0, pix)
                w = torch.where((zr >= zmin) & (zr <= zmax), wy[:, a] * wx[:, b], 0.0)
                acc.index_add_(1, pix, vals * w)
    zref = zref.reshape(m, H, W)
    return acc.reshape(4, m, H, W), zref, torch.isfinite(zcolor) & (zcolor <= zref * (1 + depth_tolerance))


def _min3x3(z: Tensor) -> Tensor:
    """Minimum over the 3×3 neighbourhood of every pixel of ``z`` ``[m, H, W]`` (borders: inf padding)."""
    p = F.pad(z, (1, 1, 1, 1), value=math.inf)
    r = torch.minimum(torch.minimum(p[:, :, :-2], p[:, :, 1:-1]), p[:, :, 2:])
    return torch.minimum(torch.minimum(r[:, :-2], r[:, 1:-1]), r[:, 2:])


def warp(
    cache: PointCache,
    cameras: Cameras,
    *,
    depth_tolerance: float = 0.03,
    min_weight: float = 0.5,
    max_footprint: int = 4,
    near: float = 1e-3,
    fill: float = 0.0,
    foreground_masking: bool = False,
    foreground_threshold: float = 0.05,
    visibility_check: bool = False,
    visibility_samples: int = 8,
    max_pairs: int | None = None,
) -> WarpResult:
    """Forward-warp ``cache`` into ``cameras`` (any batch shape ``[...]``, image size of the cameras).

    Args:
        depth_tolerance: relative depth band around the per-pixel nearest surface whose contributions
            are blended (the soft z-test).
        min_weight: a pixel that no core footprint covers is valid when its kept weights sum to this.
        max_footprint: largest splat support ``s`` in pixels (magnification beyond it leaves holes).
        near: points with z-depth at or below this (world units) are not drawn.
        fill: value of invalid pixels in ``rgb``.
        foreground_masking: also invalidate pixels lying more than ``foreground_threshold`` (relative)
            behind the mesh of the discontinuity band (GEN3C's conservative "foreground masking";
            needs a cache built with ``boundary_band > 0``).
        visibility_check: also invalidate pixels whose line of sight passes through space the source
            view did not see (behind one of its surfaces): something unseen there could hide the
            warped surface (e.g. the floor under a table, seen past the legs). ``visibility_samples``
            points along each valid pixel's ray, between 10 % and 95 % of its depth, are tested against
            the source depth map (behind all four nearest source pixels by more than
            ``depth_tolerance``). Space outside the source's view counts as free.
        max_pairs: cameras are processed in chunks of about ``max_pairs / len(cache)`` (bounds memory;
            default 200,000 on the CPU, where small chunks stay in cache, 8,000,000 on CUDA).

    Returns:
        :class:`WarpResult` with ``rgb [..., 3, H, W]``, ``mask``/``depth``/``weight`` ``[..., H, W]``.
    """
    if max_footprint < 1:
        raise ConfigError(f"max_footprint must be >= 1, got {max_footprint}")
    batch = cameras.shape
    flat = cameras.flatten().to(cache.device)
    M, H, W = len(flat), flat.height, flat.width
    K, w2c = flat.K, flat.w2c
    if max_pairs is None:
        max_pairs = 8_000_000 if cache.device.type == "cuda" else 200_000
    chunk = max(1, max_pairs // max(len(cache), 1))
    rgb = torch.empty(M, 3, H, W, device=cache.device)
    mask = torch.empty(M, H, W, dtype=torch.bool, device=cache.device)
    depth = torch.empty(M, H, W, device=cache.device)
    weight = torch.empty(M, H, W, device=cache.device)
    for a in range(0, M, chunk):
        b = min(a + chunk, M)
        if len(cache) == 0:
            acc = torch.zeros(4, b - a, H, W, device=cache.device)
            zref = torch.full((b - a, H, W), math.inf, device=cache.device)
            cored = torch.zeros(b - a, H, W, dtype=torch.bool, device=cache.device)
        else:
            acc, zref, cored = _splat_chunk(cache, K[a:b], w2c[a:b], H, W, depth_tolerance, max_footprint, near)
        wsum = acc[0]
        ok = (cored | (wsum >= min_weight)) & (wsum > 0)
        denom = torch.where(ok, wsum, torch.ones_like(wsum))
        d = torch.where(ok, zref, torch.zeros_like(wsum))
        if foreground_masking:
            if cache.mesh_faces is None:
                raise ConfigError("foreground_masking needs a cache built with boundary_band > 0")
            zmesh = rasterize_depth(cache.mesh_vertices, cache.mesh_faces, K[a:b], w2c[a:b], H, W, near)
            ok &= ~(zmesh < d * (1 - foreground_threshold))
            d = torch.where(ok, d, torch.zeros_like(d))
        if visibility_check:
            if cache.source_depth is None:
                raise ConfigError("visibility_check needs a cache made by PointCache.from_depth")
            ok &= ~_through_unseen_space(cache, flat[a:b], d, ok, visibility_samples, depth_tolerance)
            d = torch.where(ok, d, torch.zeros_like(d))
        c = (acc[1:4] / denom).transpose(0, 1)
        rgb[a:b] = torch.where(ok[:, None], c, torch.full_like(c, fill))
        mask[a:b] = ok
        depth[a:b] = d
        weight[a:b] = wsum
    return WarpResult(rgb.reshape(*batch, 3, H, W), mask.reshape(*batch, H, W), depth.reshape(*batch, H, W),
                      weight.reshape(*batch, H, W))


def _through_unseen_space(cache: PointCache, cams: Cameras, depth: Tensor, valid: Tensor, samples: int,
                          tolerance: float) -> Tensor:
    """``[m, H, W]`` bool: valid pixels whose ray, before reaching ``depth``, passes behind a surface of
    the source view (inside its image, farther than all four source pixels around the projection)."""
    src = cache.source
    sd = cache.source_depth  # [Hs, Ws]
    Hs, Ws = sd.shape
    # the deepest of the 2×2 source pixels around a position: "behind" must hold for all four
    deep = F.max_pool2d(F.pad(sd[None, None], (1, 1, 1, 1), mode="replicate"), 2, stride=1)[0, 0]  # [Hs+1, Ws+1]
    m, H, W = depth.shape
    out = torch.zeros(m, H, W, dtype=torch.bool, device=depth.device)
    idx = torch.nonzero(valid.reshape(-1), as_tuple=True)[0]
    if idx.numel() == 0:
        return out
    cam_i = torch.div(idx, H * W, rounding_mode="floor")
    rest = idx - cam_i * (H * W)
    jj = torch.div(rest, W, rounding_mode="floor")
    ii = rest - jj * W
    pix = torch.stack([ii.float() + 0.5, jj.float() + 0.5, torch.ones_like(ii, dtype=torch.float32)], -1)
    rays = (torch.linalg.inv(cams.K)[cam_i] @ pix[..., None])[..., 0]  # camera space, z = 1
    dirs = (cams.c2w[cam_i, :3, :3] @ rays[..., None])[..., 0]
    origin = cams.c2w[cam_i, :3, 3]
    d = depth.reshape(-1).index_select(0, idx)
    w2c = src.w2c
    hidden = torch.zeros_like(d, dtype=torch.bool)
    for k in range(samples):
        t = d * (0.1 + 0.85 * k / max(samples - 1, 1))
        X = origin + dirs * t[:, None]
        u, v, z = _project(X, src.K[None], w2c[None])
        u, v, z = u[0], v[0], z[0]
        inside = (z > 0) & (u >= 0) & (u < Ws) & (v >= 0) & (v < Hs)
        iu = (u + 0.5).floor().long().clamp(0, Ws)  # index into `deep` (2×2 window ending here)
        iv = (v + 0.5).floor().long().clamp(0, Hs)
        behind = inside & (z > deep[iv, iu] * (1 + tolerance)) & (deep[iv, iu] > 0)
        hidden |= behind
    out.view(-1)[idx] = hidden
    return out


# --------------------------------------------------------------------------- mesh depth (foreground masking)
def rasterize_depth(
    vertices: Tensor,
    faces: Tensor,
    K: Tensor,
    w2c: Tensor,
    H: int,
    W: int,
    near: float = 1e-3,
    max_area: int = 16384,
) -> Tensor:
    """Nearest z-depth ``[m, H, W]`` of a triangle mesh seen by ``m`` cameras (inf where empty).

    Vectorised scan conversion: every triangle is expanded to the pixel centres of its bounding box
    (boxes above ``max_area`` pixels are skipped), tested with edge functions, and its depth
    interpolated perspective-correctly (``1/z`` is affine in the image); ``scatter_reduce(amin)``
    keeps the nearest. Triangles with a vertex at or behind ``near`` are skipped.
    """
    m = K.shape[0]
    out = torch.full((m * H * W + 1,), math.inf, device=K.device)
    if faces.numel() == 0:
        return out[:-1].reshape(m, H, W)
    u, v, z = _project(vertices, K, w2c)  # [m, V]
    fu, fv, fz = u[:, faces], v[:, faces], z[:, faces]  # [m, F, 3]
    ok = (fz > near).all(-1)
    x0 = torch.floor(fu.amin(-1) - 0.5).clamp(min=0)
    x1 = torch.ceil(fu.amax(-1) - 0.5).clamp(max=W - 1)
    y0 = torch.floor(fv.amin(-1) - 0.5).clamp(min=0)
    y1 = torch.ceil(fv.amax(-1) - 0.5).clamp(max=H - 1)
    bw = (x1 - x0 + 1).clamp(min=0)
    bh = (y1 - y0 + 1).clamp(min=0)
    area = bw * bh
    ok &= (area > 0) & (area <= max_area)
    cam_i, face_i = torch.nonzero(ok, as_tuple=True)
    if cam_i.numel() == 0:
        return out[:-1].reshape(m, H, W)
    tri_u, tri_v, tri_z = fu[cam_i, face_i], fv[cam_i, face_i], fz[cam_i, face_i]  # [T, 3]
    bx0, by0 = x0[cam_i, face_i].long(), y0[cam_i, face_i].long()
    bww = bw[cam_i, face_i].long()
    counts = area[cam_i, face_i].long()
    tri = torch.repeat_interleave(torch.arange(counts.numel(), device=K.device), counts)
    start = torch.cumsum(counts, 0) - counts
    local = torch.arange(tri.numel(), device=K.device) - start[tri]
    px = bx0[tri] + local % bww[tri]
    py = by0[tri] + torch.div(local, bww[tri], rounding_mode="floor")
    cx, cy = px.float() + 0.5, py.float() + 0.5
    a_u, a_v = tri_u[tri], tri_v[tri]
    # edge functions / barycentric coordinates in the image plane
    e0 = (a_u[:, 1] - cx) * (a_v[:, 2] - cy) - (a_u[:, 2] - cx) * (a_v[:, 1] - cy)
    e1 = (a_u[:, 2] - cx) * (a_v[:, 0] - cy) - (a_u[:, 0] - cx) * (a_v[:, 2] - cy)
    e2 = (a_u[:, 0] - cx) * (a_v[:, 1] - cy) - (a_u[:, 1] - cx) * (a_v[:, 0] - cy)
    total = e0 + e1 + e2
    inside = ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)) | ((e0 <= 0) & (e1 <= 0) & (e2 <= 0))
    inside &= total.abs() > 1e-12
    ts = torch.where(total.abs() > 1e-12, total, torch.ones_like(total))
    iz = tri_z[tri].reciprocal()
    inv = (e0 * iz[:, 0] + e1 * iz[:, 1] + e2 * iz[:, 2]) / ts
    zpix = torch.where(inside & (inv > 0), 1.0 / inv.clamp_min(1e-12), torch.full_like(inv, math.inf))
    flat = cam_i[tri] * (H * W) + py * W + px
    out.scatter_reduce_(0, flat, zpix, reduce="amin")
    return out[:-1].reshape(m, H, W)
