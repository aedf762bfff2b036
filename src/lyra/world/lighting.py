"""Lighting: Lambertian shading with hemispherical ambient, a directional key light with soft-ish
shadow maps, point lights (indoor) and world-space haze. Everything depends only on the surface point
(and the scene time), never on the viewer, so all views of a world agree (no specular terms).

Shadows: an orthographic depth map of the shadow *casters* (local primitives; planes and room walls
only receive) seen from the key light, ray-cast with the same caster as the images. Lookups compare
the point's light-space depth with the four nearest texels and blend bilinearly (2×2 PCF): shadow
edges are about one texel soft. Static casters share one map per scene; moving casters get one small
map per (scene, time), multiplied in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lyra.world._compile import kernel
from lyra.world.raycast import Rays, Surface, Views, cull, trace
from lyra.world.scene import SceneBatch, light_basis
from lyra.world.textures import Params, albedo

TILE = 16


@dataclass
class ShadowMaps:
    """Light-space depth maps. ``static`` [S, res_s²] per scene; ``dynamic`` [M, res_d²] per (scene,
    time) of dynamic scenes; ``dyn_of_view`` [V] map index of each view (-1: none)."""

    static: Tensor
    res_static: int
    dynamic: Tensor
    res_dynamic: int
    dyn_of_view: Tensor


def _ortho_rays(light: Tensor, res: int) -> tuple[Rays, int]:
    """Parallel rays from the key light over each map's square: ``light`` [M, LIGHT_DIM]."""
    M = light.shape[0]
    dev = light.device
    L = light[:, 0:3]
    u, v = light_basis(L)
    C, E, D = light[:, 20:23], light[:, 23], light[:, 24]
    nt = -(-res // TILE)
    resp = nt * TILE
    texel = 2 * E / res  # [M]
    ij = torch.arange(resp, device=dev, dtype=torch.float32) + 0.5
    a = -E[:, None] + ij[None] * texel[:, None]  # [M, resp]
    # texel (row j, column i): origin = C + D L + a_i u + a_j v
    base = C + D[:, None] * L  # [M, 3]
    org = (base[:, None, None, :] + a[:, None, :, None] * u[:, None, None, :]
           + a[:, :, None, None] * v[:, None, None, :])  # [M, resp(j), resp(i), 3]
    org = org.reshape(M, nt, TILE, nt, TILE, 3).permute(5, 0, 1, 3, 2, 4).reshape(3, M * nt * nt, TILE * TILE)
    d = (-L).T[:, :, None, None].expand(3, M, nt * nt, TILE * TILE).reshape(3, M * nt * nt, TILE * TILE)
    ta = (torch.arange(nt, device=dev, dtype=torch.float32) + 0.5) * TILE
    ca = -E[:, None] + ta[None] * texel[:, None]  # [M, nt]
    beam_o = (base[:, None, None, :] + ca[:, None, :, None] * u[:, None, None, :]
              + ca[:, :, None, None] * v[:, None, None, :]).reshape(-1, 3)
    axis = (-L).repeat_interleave(nt * nt, 0)
    rays = Rays(
        view=torch.arange(M, device=dev).repeat_interleave(nt * nt),
        o=org.contiguous(),
        d=d.contiguous(),
        beam_o=beam_o,
        beam_a=axis,
        beam_tan=torch.zeros(M * nt * nt, device=dev),
        beam_rho=(texel * TILE * 0.7072 + 1e-4).repeat_interleave(nt * nt),
        zaxis=axis,
    )
    return rays, resp


def _depth_maps(batch: SceneBatch, scene: Tensor, time: Tensor, res: int, moving: bool,
                light: Tensor | None = None) -> Tensor:
    """Depth maps [M, res²] of the static (``moving=False``) or moving casters of ``scene`` at ``time``, seen from
    each scene's key light, or from the light rows ``light`` [M, LIGHT_DIM] where given (direction 0:3, frame 20:25)."""
    if scene.numel() == 0:
        return torch.zeros(0, res * res, device=batch.device)
    views = Views.make(batch, scene, time)
    g = batch.tensors
    obj_moving = torch.gather(g["obj_moving"][scene], 1, g["prim_obj"][scene])  # [M, P]
    mask = obj_moving if moving else ~obj_moving
    rays, resp = _ortho_rays(g["light"][scene] if light is None else light, res)
    cand = cull(views, rays, prim_mask=mask)
    t, _ = trace(views, rays, cand, near=0.0, use_globals=False)
    M = scene.numel()
    nt = resp // TILE
    t = t.reshape(M, nt, nt, TILE, TILE).permute(0, 1, 3, 2, 4).reshape(M, resp, resp)[:, :res, :res]
    return t.reshape(M, res * res).contiguous()


def shadow_maps(batch: SceneBatch, view_scene: Tensor, view_time: Tensor, res_static: int = 512,
                res_dynamic: int = 256) -> ShadowMaps:
    """Shadow maps for views (scene ``view_scene`` [V] at ``view_time`` [V])."""
    dev = batch.device
    S = batch.n_scenes
    static = _depth_maps(batch, torch.arange(S, device=dev), torch.zeros(S, device=dev), res_static, False)
    dyn_scene = batch.obj_moving.any(1)  # [S]
    dyn_of_view = torch.full((view_scene.numel(),), -1, dtype=torch.long, device=dev)
    sel = dyn_scene[view_scene].nonzero().squeeze(1)
    if sel.numel():
        key = torch.stack([view_scene[sel].double(), view_time[sel].double()], 1)
        uniq, inverse = torch.unique(key, dim=0, return_inverse=True)
        dynamic = _depth_maps(batch, uniq[:, 0].long(), uniq[:, 1].float(), res_dynamic, True)
        dyn_of_view[sel] = inverse
    else:
        dynamic = torch.zeros(0, res_dynamic * res_dynamic, device=dev)
    return ShadowMaps(static, res_static, dynamic, res_dynamic, dyn_of_view)


def scene_params(table: Tensor, scene: Tensor) -> Tensor:
    """Per-point columns ``[X, k]`` of a per-scene table ``[S, X]`` (``[X, 1]``, broadcast, if S = 1)."""
    if table.shape[0] == 1:
        return table[0][:, None]
    return table.T.index_select(1, scene)


def map_coords(frame: Tensor, res: int, p: Tensor, n: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Where points ``p`` [3, k] (normals ``n`` [3, k]) fall in a shadow map of ``res``² texels with ``frame``
    [14, k or 1] (see :func:`_lookup`): texel coordinates ``x, y`` [k], the depth ``z`` [k] to compare (the point
    moved 1.5 texels along its normal, minus a 1.5-texel bias: no shadow acne) and the texel size ``texel``."""
    L, u, v, C, E, D = frame[0:3], frame[3:6], frame[6:9], frame[9:12], frame[12], frame[13]
    texel = 2 * E / res
    rel = p + n * (1.5 * texel) - C
    x = (rel[0] * u[0] + rel[1] * u[1] + rel[2] * u[2] + E) / texel - 0.5
    y = (rel[0] * v[0] + rel[1] * v[1] + rel[2] * v[2] + E) / texel - 0.5
    z = D - (rel[0] * L[0] + rel[1] * L[1] + rel[2] * L[2]) - 1.5 * texel  # depth minus bias
    return x, y, z, texel


def pcf(maps: Tensor, res: int, which: Tensor, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
    """Bilinear 2×2 comparison (1 = lit) of depths ``z`` at texel coordinates ``x, y`` of maps ``which``; texels
    outside the map count as lit."""
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    flat = maps.reshape(-1)
    lit = torch.zeros_like(x)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        xi, yi = x0 + dx, y0 + dy
        inside = (xi >= 0) & (xi < res) & (yi >= 0) & (yi < res)
        idx = which * (res * res) + yi.clamp(0, res - 1).long() * res + xi.clamp(0, res - 1).long()
        m = flat.take(idx)
        tap = ((z <= m) | ~inside).to(x.dtype)
        wx = fx if dx else 1 - fx
        wy = fy if dy else 1 - fy
        lit = lit + tap * wx * wy
    return lit


@kernel
def _lookup(maps: Tensor, res: int, which: Tensor, p: Tensor, n: Tensor, frame: Tensor) -> Tensor:
    """Fraction lit in [0, 1] of points ``p`` [3, k] (normals ``n`` [3, k]) in maps ``which`` [k] (2×2 PCF).

    ``frame`` [14, k or 1]: light direction 0:3, basis u 3:6, v 6:9, map centre 9:12, half extent 12,
    depth range 13. Points are offset along their normal by 1.5 texels and compared with a 1.5-texel
    bias (no shadow acne). Texels outside the map count as lit.
    """
    x, y, z, _ = map_coords(frame, res, p, n)
    return pcf(maps, res, which, x, y, z)


def light_frames(light: Tensor) -> Tensor:
    """Per-scene shadow-map frames ``[S, 14]`` (see :func:`_lookup`) from light rows ``[S, LIGHT_DIM]``."""
    L = light[:, 0:3]
    u, v = light_basis(L)
    return torch.cat([L, u, v, light[:, 20:23], light[:, 23:24], light[:, 24:25]], 1)


def add_point_lights(lum: Tensor, points: Tensor, p: Tensor, n: Tensor) -> Tensor:
    """``lum`` ``[3, N]`` plus the diffuse light of the scene's point lights at points ``p`` ``[3, N]`` with normals
    ``n`` ``[3, N]``. ``points`` ``[L, 13]`` in :data:`lyra.world.scene.POINT_DIM`'s layout (position 3 | colour 3 |
    radius 1 | region box min 3 | max 3); a light reaches only the points inside its box, falling off as
    ``1 / (1 + d²/r²)``. Shared by the classic and the photo style's shading."""
    for li in range(points.shape[0]):
        pl = points[li]
        vec = pl[0:3] - p
        dist2 = vec[0] * vec[0] + vec[1] * vec[1] + vec[2] * vec[2]
        ndp = (n[0] * vec[0] + n[1] * vec[1] + n[2] * vec[2]).clamp_min(0) * torch.rsqrt(dist2 + 1e-12)
        region = ((p > pl[7:10]) & (p < pl[10:13])).all(0).to(p.dtype)
        lum = lum + pl[3:6] * (ndp / (1 + dist2 / (pl[6] * pl[6])) * region)
    return lum


@kernel
def _illuminate(rgb: Tensor, p: Tensor, n: Tensor, light: Tensor, lit: Tensor, emission: Tensor,
                points: Tensor) -> Tensor:
    """Lambertian lighting and haze of albedo ``rgb`` [3, k] at ``p``/``n`` [3, k].

    ``light`` [LIGHT_DIM, k or 1], ``lit`` [k] shadow factor of the key light, ``emission`` [k],
    ``points`` [L, POINT_DIM, k or 1] point lights (zero colour = off).
    """
    L = light[0:3]
    ndl = (n[0] * L[0] + n[1] * L[1] + n[2] * L[2]).clamp_min(0)
    hemi = 0.5 - 0.5 * n[1]
    lum = torch.lerp(light[9:12], light[6:9], hemi) + light[3:6] * (ndl * lit)
    lum = add_point_lights(lum, points, p, n)
    out = rgb * (lum + emission)
    # haze by distance from a fixed world point (view independent)
    rel = p - light[15:18]
    dist = torch.sqrt(rel[0] * rel[0] + rel[1] * rel[1] + rel[2] * rel[2])
    f = 1 - torch.exp(-(dist - light[19]).clamp_min(0) / light[18])
    return torch.lerp(out, light[12:15], f).clamp(0.0, 1.0)


def shade(batch: SceneBatch, views: Views, surf: Surface, footprint: Tensor, maps: ShadowMaps) -> Tensor:
    """Linear RGB ``[3, k]`` in [0, 1] of the surface points ``surf`` (footprint [k] in metres)."""
    g = batch.tensors
    sc = views.scene.index_select(0, surf.view)
    S, M = g["materials"].shape[:2]
    mats = Params(g["materials"].reshape(S * M, -1).T.contiguous(), sc * M + surf.mat)
    rgb = albedo(mats, surf.q, surf.n_tex, footprint)
    light = scene_params(g["light"], sc)  # [LIGHT_DIM, k or 1]
    frame = scene_params(light_frames(g["light"]), sc)
    which = sc if S > 1 else torch.zeros_like(sc)
    lit = _lookup(maps.static, maps.res_static, which, surf.p, surf.normal, frame)
    if maps.dynamic.shape[0]:
        dyn = maps.dyn_of_view.index_select(0, surf.view)
        lit_d = _lookup(maps.dynamic, maps.res_dynamic, dyn.clamp_min(0), surf.p, surf.normal, frame)
        lit = lit * torch.where(dyn >= 0, lit_d, 1.0)
    pts = g["points"]  # [S, L, 13]
    on = (pts[:, :, 3:6].sum(-1) > 0).any(0)
    pts = pts[:, on]
    points = torch.stack([scene_params(pts[:, li], sc) for li in range(pts.shape[1])], 0) if pts.shape[1] \
        else torch.zeros(0, 13, 1, device=sc.device)
    return _illuminate(rgb, surf.p, surf.normal, light, lit, mats[15], points)
