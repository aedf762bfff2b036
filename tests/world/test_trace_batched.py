"""The batched caster (one call per primitive kind) against the per-slot loop it replaced.

``_reference_trace`` is the previous :func:`lyra.world.raycast.trace`, kept verbatim as the oracle: for every
primitive kind and list slot ``k`` it intersects the groups that have a k-th candidate and keeps the strictly
nearer hit (and walks the room union box by box). The batched caster must give the same ``t`` and identical
hit codes, and ``make_example`` must render what the previous code rendered (statistics recorded with it).
"""

import json
from pathlib import Path

import pytest
import torch

from lyra.world import make_example, sample_world
from lyra.world.intersect import INTERSECT, MISS
from lyra.world.lighting import _ortho_rays
from lyra.world.raycast import (
    _SHIFT,
    HIT_PLANE,
    HIT_PRIM,
    HIT_ROOM,
    Views,
    _finish,
    _globals,
    _planes_kernel,
    _rooms_kernel,
    _to_local,
    camera_tiles,
    cull,
    trace,
)
from lyra.world.render import _subsample_rays
from lyra.world.sample import render_samples, samples_cameras
from lyra.world.scene import N_KINDS, ROOM_PAD, SceneBatch


def _reference_globals(views, rays, near):
    n, R = rays.n, rays.R
    t_best = torch.full((n, R), MISS)
    code = torch.zeros((n, R))
    ok = views.plane_ok.index_select(0, rays.view)
    if ok.shape[1] and bool(ok.any()):
        t_best, code = _planes_kernel(rays.o, rays.d, views.plane.index_select(0, rays.view), ok, t_best, code, near)
    rooms = views.room.index_select(0, rays.view)
    if rooms.shape[1] and bool((rooms[:, :, 0] < ROOM_PAD * 0.5).any()):
        # the per-box walk (still the CPU path), eager: the oracle of the batched walk
        t_best, code = _rooms_kernel.__wrapped__(rays.o, rays.d, rooms, t_best, code, near)
    return t_best, code


def _reference_trace(views, rays, cand, near=1e-3, use_globals=True, chunk_rays=1 << 18, early_z=True):
    """The per-slot caster of lyra before the batched one (``git show 940a895:src/lyra/world/raycast.py``), with
    its globals (planes unchanged, the room walk box by box)."""
    n, R = rays.n, rays.R
    if use_globals:
        t_best, code = _reference_globals(views, rays, near)
    else:
        t_best = torch.full((n, R), MISS, device=rays.d.device)
        code = torch.zeros((n, R), device=rays.d.device)
    lists, start, count = cand.lists, cand.start, cand.count
    if lists.shape[1] and early_z:
        far = t_best.amax(1, keepdim=True)
        lists = torch.where(cand.zmin <= far, lists, -1)
    group_chunk = max(1, chunk_rays // R)
    P = views.kind.shape[1]
    center_f = views.center.reshape(-1, 3)
    rot_f = views.rot.reshape(-1, 9)
    size_f = views.size.reshape(-1, 3)
    for kind in range(N_KINDS if lists.shape[1] else 0):
        cnt = count[:, kind]
        kmax = int(cnt.max())
        for k in range(kmax):
            slot = (start[:, kind] + k).clamp(max=lists.shape[1] - 1)
            prim_all = torch.gather(lists, 1, slot[:, None])[:, 0]
            groups = ((cnt > k) & (prim_all >= 0)).nonzero().squeeze(1)
            for g0 in range(0, groups.numel(), group_chunk):
                g = groups[g0:g0 + group_chunk]
                prim = prim_all.index_select(0, g)
                flat = rays.view.index_select(0, g) * P + prim
                c = center_f.index_select(0, flat).T.contiguous()[:, :, None]
                rot = rot_f.index_select(0, flat).T.contiguous()[:, :, None]
                size = size_f.index_select(0, flat).T.contiguous()[:, :, None]
                o, d = rays.o.index_select(1, g), rays.d.index_select(1, g)
                cur, cur_code = t_best.index_select(0, g), code.index_select(0, g)
                new_code = (prim.to(cur.dtype) + float(HIT_PRIM << _SHIFT))[:, None]
                o_l, d_l = _to_local(o, d, c, rot)
                t = INTERSECT[kind](o_l, d_l, (size[0], size[1], size[2]), near)
                better = (t < cur).to(t.dtype)
                new_t, new_c = torch.minimum(t, cur), torch.lerp(cur_code, new_code, better)
                t_best.index_copy_(0, g, new_t)
                code.index_copy_(0, g, new_c)
    return _finish(t_best, code)


def _assert_same(new, ref):
    (t, code), (t_ref, code_ref) = new, ref
    assert torch.equal(code, code_ref)
    assert torch.equal(torch.isinf(t), torch.isinf(t_ref))
    fin = torch.isfinite(t_ref)
    assert torch.allclose(t[fin], t_ref[fin], rtol=1e-6, atol=0)


def _views_and_rays(seeds, preset="micro", dynamic=False):
    samples = [sample_world(s, preset, dynamic) for s in seeds]
    batch = SceneBatch.pack([ws.scene for ws in samples], "cpu")
    _, cams, times, idx = samples_cameras(samples)
    views = Views.make(batch, idx, times)
    rays, _, _ = camera_tiles(cams.K, cams.c2w, cams.width, cams.height, 8, torch.arange(len(cams)))
    return batch, views, rays, cams


@pytest.mark.parametrize("seeds, dynamic", [((3, 4, 5, 6), False), ((7, 9), True)])
def test_batched_trace_matches_per_slot_loop(seeds, dynamic):
    """Primary rays of every frame of several seeded worlds (indoor and outdoor, static and moving), traced in
    one batch: same depth and hit codes, with and without early z, in large and tiny pair chunks."""
    batch, views, rays, cams = _views_and_rays(seeds, dynamic=dynamic)
    cand = cull(views, rays)
    for early_z in (True, False):
        ref = _reference_trace(views, rays, cand, early_z=early_z)
        kinds = ref[1] >> _SHIFT
        assert (kinds == HIT_PRIM).float().mean() > 0.1  # the primitives matter here, and so do the globals
        assert (kinds == HIT_ROOM).any() and (kinds == HIT_PLANE).any()
        _assert_same(trace(views, rays, cand, early_z=early_z), ref)
    _assert_same(trace(views, rays, cand, chunk_rays=64 * 5), _reference_trace(views, rays, cand, chunk_rays=64 * 5))
    # sub-pixel rays, one group of 4 per pixel, reusing their tiles' candidates (the anti-aliasing pass)
    pix = torch.arange(0, len(cams) * cams.height * cams.width, 7)
    sub, parent = _subsample_rays(cams.K, cams.c2w, torch.arange(len(cams)), pix, cams.width, cams.height, 8, rays,
                                  ((0.125, -0.375), (0.375, 0.125), (-0.125, 0.375), (-0.375, -0.125)))
    sc = cand.select(parent)
    _assert_same(trace(views, sub, sc), _reference_trace(views, sub, sc))


@pytest.mark.parametrize("batched", [False, True])
def test_room_walk_matches_box_by_box(batched):
    """The room union's walk, box by box (CPU) or with the slabs and the exit's box of all boxes at once (CUDA's
    path, run here on the CPU): the same exits and box indices as before, in indoor worlds of several rooms."""
    _, views, rays, _ = _views_and_rays((3, 5, 6))  # one outdoor world: its rays skip the walk
    assert views.room.shape[1] >= 3
    t, code = _globals(views, rays, 1e-3, batched_rooms=batched)
    t_ref, code_ref = _reference_globals(views, rays, 1e-3)
    assert (code_ref.long() >> _SHIFT == HIT_ROOM).float().mean() > 0.3
    assert len(torch.unique(code_ref)) > 3  # several boxes are exited
    assert torch.equal(t, t_ref) and torch.equal(code, code_ref)


def test_batched_trace_matches_per_slot_loop_shadow_rays():
    """Parallel rays from the key light against a subset of casters, no globals, ``near`` = 0 (shadow maps)."""
    batch, _, _, _ = _views_and_rays((9, 10, 11), dynamic=True)
    S = batch.n_scenes
    views = Views.make(batch, torch.arange(S), torch.full((S,), 0.5))
    rays, _ = _ortho_rays(batch.tensors["light"], 64)
    moving = torch.gather(batch.obj_moving, 1, batch.prim_obj)
    for mask in (moving, ~moving):
        cand = cull(views, rays, prim_mask=mask)
        _assert_same(trace(views, rays, cand, near=0.0, use_globals=False),
                     _reference_trace(views, rays, cand, near=0.0, use_globals=False))


#: ``make_example`` of micro worlds as the per-slot caster rendered them (commit 940a895, one thread): family,
#: per frame sums of the videos and of the finite depths, the number of infinite depths, for the static and
#: dynamic (with input video) cases. Written by ``json.dump`` of those statistics.
RECORDED = json.loads((Path(__file__).parent / "data" / "make_example_940a895.json").read_text())


@pytest.mark.parametrize("case", list(RECORDED))
def test_make_example_unchanged(case):
    """Images and depths of whole examples as before the batched caster (a pixel's change shows in its frame)."""
    rec = RECORDED[case]
    seed, preset, dynamic = case.split("-")
    dynamic = dynamic == "True"
    ex = make_example(int(seed), preset, dynamic=dynamic, input_video=dynamic)
    assert ex.family == rec["family"]
    for name, want in rec.items():
        if name == "family":
            continue
        x = getattr(ex, name).double()
        flat = x.reshape(-1, x.shape[-2] * x.shape[-1] * (3 if name in ("videos", "input_video") else 1))
        fin = torch.isfinite(flat)
        assert int((~fin).sum()) == want["n_inf"], name
        sums = torch.where(fin, flat, 0.0).sum(1)
        assert sums.tolist() == pytest.approx(want["frame_sums"], rel=2e-6, abs=1e-3), name
        assert float(sums.sum()) == pytest.approx(want["sum"], rel=1e-7), name


def test_mixed_indoor_outdoor_batch_renders_each_world_as_alone():
    """One batched call over outdoor and indoor worlds (only the indoor rays walk the room union) renders every
    world exactly as a call of its own."""
    samples = [sample_world(s, "micro") for s in (11, 13, 12)]
    assert {ws.scene.family for ws in samples} == {"indoor", "outdoor"}
    for ws, ex in zip(samples, render_samples(samples), strict=True):
        alone = render_samples([ws])[0]
        assert torch.equal(ex.depths, alone.depths) and torch.equal(ex.videos, alone.videos)
