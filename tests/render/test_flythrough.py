"""One fly-through for a static and a dynamic scene (lyra.render.flythrough.flythrough): a static scene is the
one-time case, so its frames are the plain render of its Gaussians along the path; a 4D scene's frame k shows the
stored time nearest to the path's time."""

from __future__ import annotations

import torch

from lyra.gaussians import Gaussians
from lyra.geometry.cameras import Cameras, look_at
from lyra.render.flythrough import dynamic_frames, flythrough, flythrough_cameras, flythrough_times, render_frames
from lyra.scene import DynamicScene, Scene


def blobs(n: int, colour: int, seed: int = 0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=g) * torch.tensor([1.0, 0.6, 1.0]) + torch.tensor([-0.5, -0.3, 2.5])
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    colors = torch.eye(3)[colour].expand(n, 3).clone()
    return Gaussians(means, quats, torch.full((n, 3), 0.08), torch.full((n,), 0.9), colors)


def cameras(v: int = 2, t: int = 3) -> Cameras:
    eye = torch.stack([torch.linspace(-0.2, 0.2, t), torch.zeros(t), torch.zeros(t)], -1)
    c2w = look_at(eye, torch.tensor([0.0, 0.0, 3.0]).expand(t, 3))
    path = Cameras.from_fov(50.0, 40, 24, c2w)
    return Cameras(path.K.expand(v, t, 3, 3).clone(), path.c2w.expand(v, t, 4, 4).clone(), 40, 24)


def test_static_scene_flythrough_is_the_plain_render():
    scene = Scene(blobs(200, 0), cameras(), ("a", "b"))
    cams, frames = flythrough(scene, orbit_frames=4, progress=False)
    want_cams = flythrough_cameras(scene.cameras, scene.gaussians, 4)
    assert len(cams) == 2 * 3 + 4
    torch.testing.assert_close(cams.c2w, want_cams.c2w)
    want = list(render_frames(scene.gaussians, want_cams, progress=False))
    got = list(frames)
    assert len(got) == len(want) == 10
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)
    assert got[0][..., 0].mean() > got[0][..., 2].mean()  # red blobs drawn, not an empty white frame


def test_dynamic_scene_flythrough_follows_time():
    sets = [blobs(150, k, seed=k) for k in range(3)]
    scene = DynamicScene(torch.tensor([0.0, 0.5, 1.0]), sets, cameras(), ("a", "b"),
                         camera_times=torch.tensor([0.0, 0.5, 1.0]))
    cams, frames = flythrough(scene, orbit_frames=3, progress=False)
    times = flythrough_times(scene.camera_times, 2, 3)
    want = list(dynamic_frames(scene, cams, times, progress=False))
    got = list(frames)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)
    # Trajectory frame f shows time f/2: red, then green, then blue blobs on white (the kept channel is the
    # brightest on average).
    assert [int(frame.reshape(-1, 3).mean(0).argmax()) for frame in got[:3]] == [0, 1, 2]


def test_frames_in_parallel_threads_are_the_serial_frames_in_order():
    from lyra.render import render

    sets = [blobs(150, k, seed=k) for k in range(3)]
    cams = flythrough_cameras(cameras(), sets[0], 5).reshape(-1)
    which = [k % 3 for k in range(len(cams))]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        frames = render_frames(sets, cams, progress=False, which=which)
        first = next(frames)
        assert torch.get_num_threads() == 1  # one torch thread per frame while the frames are made
        parallel = [first, *frames]
        assert torch.get_num_threads() == 3  # restored when the frames are done
        torch.set_num_threads(1)
        serial = list(render_frames(sets, cams, progress=False, which=which))
    finally:
        torch.set_num_threads(threads)
    assert len(parallel) == len(serial) == len(cams) == 11
    for k, (a, b) in enumerate(zip(parallel, serial, strict=True)):
        assert torch.equal(a, b), k
        assert torch.equal(a, render(sets[which[k]], cams[k]).rgb)
