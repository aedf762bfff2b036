"""Examples: placement, reprojection consistency of the ground truth, determinism, dynamic worlds."""

import pytest
import torch

from lyra.errors import ConfigError
from lyra.geometry.trajectories import TRAJECTORY_NAMES
from lyra.world import make_example, render, sample_world
from lyra.world.sample import center_depth_of, center_window
from lyra.world.scene import bezier


def _bilinear_depth(depth: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Depth at sub-pixel positions ``uv`` [N, 2] (pixel centres at +0.5) where the 2×2 texels around
    agree within 10 % (one smooth surface); NaN across depth discontinuities and next to the sky."""
    H, W = depth.shape
    x, y = uv[:, 0] - 0.5, uv[:, 1] - 0.5
    x0, y0 = torch.floor(x).long(), torch.floor(y).long()
    fx, fy = x - x0, y - y0
    out = torch.zeros_like(x)
    taps = []
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        xi, yi = (x0 + dx).clamp(0, W - 1), (y0 + dy).clamp(0, H - 1)
        w = (fx if dx else 1 - fx) * (fy if dy else 1 - fy)
        taps.append(depth[yi, xi])
        out = out + w * taps[-1]
    taps = torch.stack(taps)
    smooth = taps.amax(0) <= 1.1 * taps.amin(0)
    return torch.where(torch.isfinite(out) & smooth, out, torch.nan)


@pytest.mark.parametrize("seed, family", [(11, "indoor"), (12, "outdoor"), (13, None)])
def test_reprojection_consistency(seed, family):
    """Unproject frame 0 with its depth, project into frame k of every trajectory and compare with frame
    k's depth where the point is in view and not occluded: ≤ 1 % of depth on ≥ 95 % of such pixels."""
    ex = make_example(seed, "micro", family=family)
    cams = ex.cameras
    pts = cams[0, 0].unproject(ex.depth)  # [H, W, 3]
    fin = torch.isfinite(ex.depth)
    P = pts[fin]
    checked = 0
    for v in range(len(TRAJECTORY_NAMES)):
        for k in range(1, cams.shape[1]):
            cam = cams[v, k]
            uv, z = cam.project(P)
            inb = (z > 0) & (uv[:, 0] >= 0.5) & (uv[:, 0] <= cam.width - 0.5) & (uv[:, 1] >= 0.5) \
                & (uv[:, 1] <= cam.height - 0.5)
            dk = _bilinear_depth(ex.depths[v, k], uv[inb])
            zi = z[inb]
            ok = torch.isfinite(dk)  # on a smooth surface of frame k
            visible = ok & (zi <= dk * 1.01)  # not behind another surface (occluded)
            agree = (zi[visible] - dk[visible]).abs() <= 0.01 * zi[visible]
            assert visible.sum() > 0.15 * fin.sum()
            assert agree.float().mean() >= 0.95, (v, k, agree.float().mean())
            checked += int(visible.sum())
    assert checked > 10000


def test_placement_and_trajectories():
    for seed in (21, 22, 23, 24):
        ws = sample_world(seed, "micro")
        scene, cams = ws.scene, ws.cameras
        assert cams.shape == (6, 9)
        assert torch.allclose(cams.c2w[:, 0], ws.input_camera.c2w.expand(6, 4, 4), atol=1e-6)
        # every camera of every trajectory in free space, with clearance
        assert not scene.inside(cams.centers.reshape(-1, 3), 0.0, 0.2).any()
        r = render(scene, ws.input_camera)
        assert ws.center_depth == center_depth_of(r.depth)
        win = center_window(r.depth)
        assert torch.isfinite(win).float().mean() >= 0.5
        assert 0.8 <= ws.center_depth <= 60
        # the scene centre lies on the input optical axis at the centre depth; all cameras look at it
        centre = ws.input_camera.c2w[:3, 3] + ws.center_depth * ws.input_camera.c2w[:3, 2]
        to_c = torch.nn.functional.normalize(centre - cams.centers, dim=-1)
        assert torch.allclose((to_c * cams.c2w[..., :3, 2]).sum(-1), torch.ones(6, 9), atol=1e-5)
        # world up: the input camera's "up" is about -y (horizon roughly level)
        assert ws.input_camera.c2w[1, 1] > 0.95


def test_example_fields_and_determinism():
    a = make_example(5, "micro")
    b = make_example(5, "micro")
    for name in ("image", "depth", "videos", "depths"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert torch.equal(a.cameras.c2w, b.cameras.c2w) and a.center_depth == b.center_depth
    assert a.videos.shape == (6, 9, 3, 48, 88) and a.depths.shape == (6, 9, 48, 88)
    assert torch.equal(a.videos[:, 0], a.image.expand(6, 3, 48, 88))
    assert torch.equal(a.depths[:, 0], a.depth.expand(6, 48, 88))
    assert a.times is None and a.seed == 5 and a.family in ("indoor", "outdoor")
    assert a.image.min() >= 0 and a.image.max() <= 1 and a.image.std() > 0.05
    c = make_example(6, "micro")
    assert not torch.equal(a.image, c.image)


def test_family_option():
    assert sample_world(7, "micro", family="indoor").scene.family == "indoor"
    assert sample_world(7, "micro", family="outdoor").scene.family == "outdoor"
    with pytest.raises(ConfigError):
        sample_world(7, "micro", family="underwater")
    with pytest.raises(ConfigError):
        sample_world(7, "nonexistent-preset")


def test_dynamic_objects_follow_their_paths():
    ws = sample_world(31, "micro", dynamic=True)
    scene = ws.scene
    moving = scene.obj_moving.nonzero().squeeze(1)
    assert 1 <= moving.numel() <= 3
    for t in (0.0, 0.25, 0.6, 1.0):
        pos = scene.object_positions(t)
        tt = torch.tensor(t)
        u = 1 - tt
        expected = scene.obj_pivot + (3 * u * u * tt * scene.obj_path[:, 0] + 3 * u * tt * tt * scene.obj_path[:, 1]
                                      + tt**3 * scene.obj_path[:, 2]) * scene.obj_moving[:, None]
        assert torch.allclose(pos, expected, atol=1e-6)
        static = ~scene.obj_moving
        assert torch.equal(pos[static], scene.obj_pivot[static])
    assert torch.equal(scene.object_positions(0.0), scene.obj_pivot)
    # primitives move rigidly with their object: distance to the pivot is preserved
    c0, _ = scene.prims_at(0.0)
    c1, _ = scene.prims_at(1.0)
    piv0, piv1 = scene.object_positions(0.0)[scene.prim_obj], scene.object_positions(1.0)[scene.prim_obj]
    assert torch.allclose((c0 - piv0).norm(dim=-1), (c1 - piv1).norm(dim=-1), atol=1e-5)
    assert torch.allclose(bezier(scene.obj_path, torch.tensor(1.0)), scene.obj_path[:, 2])


def test_rendered_sphere_follows_its_path():
    """A moving ball: its depth under the camera at time t matches the closed-form path."""
    from lyra.geometry.cameras import Cameras, look_at
    from lyra.world.scene import SceneBuilder
    from tests.world.world_helpers import lights

    b = SceneBuilder("outdoor", 0)
    lights(b)
    m = b.material((0.8, 0.2, 0.2))
    b.plane((0.0, -1.0, 0.0), 0.0, b.material((0.4, 0.5, 0.3)))
    o = b.new_object((0.0, -1.0, 8.0))
    b.ellipsoid(o, (0.0, -1.0, 8.0), (0.5, 0.5, 0.5), m)
    b.set_motion(o, [[0.0, 0.0, -1.0], [0.0, 0.0, -2.0], [0.0, 0.0, -3.0]])  # straight towards the camera
    scene = b.build()
    cam = Cameras.from_fov(50.0, 65, 49, look_at(torch.tensor([0.0, -1.0, 0.0]), torch.tensor([0.0, -1.0, 1.0])))
    for t in (0.0, 0.3, 0.7, 1.0):
        z_centre = 8.0 + float(bezier(scene.obj_path[o], torch.tensor(t))[2])
        r = render(scene, cam, times=t, aa="none")
        assert r.depth[24, 32].item() == pytest.approx(z_centre - 0.5, abs=2e-4)  # pixel (32, 24) is on axis


def test_dynamic_example_times():
    ex = make_example(32, "micro", dynamic=True)
    assert torch.allclose(ex.times, torch.arange(9) / 8.0)
    assert ex.dynamic and ex.videos.shape == (6, 9, 3, 48, 88)
