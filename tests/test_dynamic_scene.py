"""DynamicScene: folder round trips in every format, atomic replacement, nearest-time lookup, and the fly-through
with time advancing (frame i shows the Gaussians of the stored time nearest to the path's time i)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from lyra.errors import ConfigError, FormatError, InputFileError, OutputPathError
from lyra.gaussians import Gaussians
from lyra.geometry.cameras import Cameras, look_at
from lyra.render.flythrough import dynamic_frames, flythrough_cameras, flythrough_times
from lyra.scene import (
    DYNAMIC_FORMAT,
    DynamicScene,
    LazyGaussians,
    is_dynamic_scene_dir,
    nearest_time_index,
)


def blob(colour: tuple[float, float, float], n: int = 200, seed: int = 0, x: float = 0.0) -> Gaussians:
    """``n`` opaque Gaussians of one colour, a slab at z ≈ 3 in front of the origin camera, shifted by ``x``."""
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=g) * torch.tensor([2.0, 1.2, 0.2]) + torch.tensor([x - 1.0, -0.6, 2.9])
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    return Gaussians(means, quats, torch.full((n, 3), 0.12), torch.full((n,), 0.99), torch.tensor(colour).expand(n, 3))


def trajectories(v: int = 2, t: int = 5) -> Cameras:
    """``v`` short sideways paths of ``t`` cameras looking at (0, 0, 3), 48 × 64 pixels."""
    eyes = torch.stack([torch.stack([torch.tensor([0.1 * (k + 1) * f / t, 0.0, 0.0]) for f in range(t)])
                        for k in range(v)])
    c2w = look_at(eyes, torch.tensor([0.0, 0.0, 3.0]).expand(v, t, 3))
    return Cameras.from_fov(50.0, 64, 48, c2w)


RED, GREEN, BLUE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


def make_scene(times=(0.0, 0.5, 1.0)) -> DynamicScene:
    colours = [RED, GREEN, BLUE]
    sets = [blob(colours[k % 3], seed=k, x=0.2 * k) for k in range(len(times))]
    return DynamicScene(torch.tensor(times), sets, trajectories(), ("left", "right"),
                        metadata={"preset": "tiny", "seed": 3, "input": {"source": "clip.mp4"}, "nan": float("nan")})


def assert_same_gaussians(a: Gaussians, b: Gaussians, atol: float = 1e-6) -> None:
    for key in ("means", "scales", "opacities", "colors"):
        torch.testing.assert_close(getattr(a, key), getattr(b, key), atol=atol, rtol=0)
    # quaternions: q ≡ −q, so compare the covariances (entries ~0.0144 here: a tolerance relative to them)
    torch.testing.assert_close(a.covariances(), b.covariances(), atol=0.05 * atol, rtol=0)


# ------------------------------------------------------------------------------------------ time lookup
def test_nearest_time_index():
    times = torch.tensor([0.0, 0.25, 1.0])
    assert [nearest_time_index(times, t) for t in (0.0, 0.1, 0.125, 0.13, 0.6, 0.625, 0.7, 1.0, 2.0, -1.0)] == \
        [0, 0, 0, 1, 1, 1, 2, 2, 2, 0]  # 0.125 and 0.625 are ties: the earlier time
    got = nearest_time_index(times, torch.tensor([[0.1, 0.9], [0.3, 0.5]]))
    assert got.tolist() == [[0, 2], [1, 1]]
    scene = make_scene()
    assert scene.at(0.74) is scene.gaussians[1] and scene.at(0.76) is scene.gaussians[2]


def test_bad_scenes_are_refused():
    g = blob(RED)
    with pytest.raises(ConfigError, match="one set per time"):
        DynamicScene(torch.tensor([0.0, 1.0]), [g])
    with pytest.raises(ConfigError, match="strictly increasing"):
        DynamicScene(torch.tensor([0.5, 0.5]), [g, g])
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        DynamicScene(torch.tensor([0.0, 1.5]), [g, g])
    with pytest.raises(ConfigError, match="names"):
        DynamicScene(torch.tensor([0.0]), [g], trajectories(2, 3), ("only one",))


# ------------------------------------------------------------------------------------------ files
@pytest.mark.parametrize("fmt, atol", [(".ply", 1e-6), ("spz", 2e-2), (".splat", 2e-2)])
def test_round_trip(tmp_path, fmt, atol):
    scene = make_scene()
    out = scene.save(tmp_path / "scene4d", format=fmt)
    ext = fmt if fmt.startswith(".") else f".{fmt}"
    assert sorted(p.name for p in out.iterdir()) == sorted(["index.json", "cameras.json"] +
                                                          [f"t{k:03d}{ext}" for k in range(3)])
    index = json.loads((out / "index.json").read_text())
    assert index["format"] == DYNAMIC_FORMAT and index["version"] == 1 and index["times"] == [0.0, 0.5, 1.0]
    assert index["files"] == [f"t{k:03d}{ext}" for k in range(3)] and index["gaussians"] == [200] * 3
    assert index["metadata"]["seed"] == 3 and index["metadata"]["nan"] is None and index["lyra"]
    assert [t["name"] for t in index["trajectories"]] == ["left", "right"]
    for lazy in (False, True):
        back = DynamicScene.load(out, lazy=lazy)
        assert isinstance(back.gaussians, LazyGaussians) == lazy
        torch.testing.assert_close(back.times, scene.times)
        assert back.names == ("left", "right") and back.cameras.shape == (2, 5)
        torch.testing.assert_close(back.cameras.c2w, scene.cameras.c2w)
        torch.testing.assert_close(back.cameras.K, scene.cameras.K)
        torch.testing.assert_close(back.camera_times, torch.linspace(0, 1, 5))
        assert back.metadata["input"] == {"source": "clip.mp4"}
        for a, b in zip(back.gaussians, scene.gaussians, strict=True):
            assert_same_gaussians(a, b, atol)


def test_many_times_names_sort_and_no_cameras(tmp_path):
    times = torch.linspace(0, 1, 1001)
    g = blob(RED, n=3)
    scene = DynamicScene(times, [g] * 1001)
    out = scene.save(tmp_path / "long")
    index = json.loads((out / "index.json").read_text())
    assert index["files"][:2] == ["t0000.ply", "t0001.ply"] and index["files"] == sorted(index["files"])
    assert index["cameras"] is None and not (out / "cameras.json").exists()
    back = DynamicScene.load(out, lazy=True)
    assert back.cameras is None and len(back) == 1001 and len(back.gaussians[1000]) == 3


def test_save_replaces_a_scene_atomically(tmp_path, monkeypatch):
    out = make_scene().save(tmp_path / "s")
    newer = DynamicScene(torch.tensor([0.0, 1.0]), [blob(GREEN, 10), blob(BLUE, 10)])
    newer.save(out)  # a scene folder is replaced as a whole: the old t002.ply and cameras.json are gone
    assert sorted(p.name for p in out.iterdir()) == ["index.json", "t000.ply", "t001.ply"]
    assert DynamicScene.load(out).times.tolist() == [0.0, 1.0]

    # A failure while writing leaves the old folder as it was and no temporary folder behind.
    bad = DynamicScene(torch.tensor([0.0, 1.0]), [blob(RED, 10), blob(RED, 10)])
    bad.gaussians[1].scales[0, 0] = -1.0  # invalid: the second file fails after the first was written
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(FormatError, match="scales must be positive"):
        bad.save(out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_save_refuses_places_it_should_not_replace(tmp_path):
    scene = make_scene()
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "me.jpg").write_bytes(b"precious")
    (tmp_path / "file.ply").write_bytes(b"x")
    with pytest.raises(OutputPathError, match="not a lyra dynamic scene"):
        scene.save(tmp_path / "photos")
    with pytest.raises(OutputPathError, match="is a file"):
        scene.save(tmp_path / "file.ply")
    with pytest.raises(OutputPathError, match="does not exist"):
        scene.save(tmp_path / "no" / "scene")
    with pytest.raises(OutputPathError):
        scene.save(tmp_path / "s", format=".obj")
    assert (tmp_path / "photos" / "me.jpg").read_bytes() == b"precious"
    (tmp_path / "empty").mkdir()
    scene.save(tmp_path / "empty")  # an empty folder is fine
    assert is_dynamic_scene_dir(tmp_path / "empty") and not is_dynamic_scene_dir(tmp_path / "photos")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_unwritable_parent(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputPathError, match="not writable"):
            make_scene().save(ro / "s")
    finally:
        ro.chmod(0o700)


def test_load_errors(tmp_path):
    out = make_scene().save(tmp_path / "s")
    with pytest.raises(InputFileError, match="no index.json"):
        DynamicScene.load(tmp_path)
    with pytest.raises(InputFileError, match="not a folder"):
        DynamicScene.load(out / "t000.ply")
    index = json.loads((out / "index.json").read_text())
    (out / "index.json").write_text(json.dumps({**index, "version": 99}))
    with pytest.raises(FormatError, match="version 99"):
        DynamicScene.load(out)
    (out / "index.json").write_text(json.dumps({**index, "times": [0.0, 0.7, 0.5]}))
    with pytest.raises(FormatError, match="strictly increasing"):
        DynamicScene.load(out)
    (out / "index.json").write_text(json.dumps(index))
    (out / "t001.ply").unlink()
    with pytest.raises(InputFileError, match="t001.ply is listed"):
        DynamicScene.load(out, lazy=True)
    (out / "index.json").write_text("{not json")
    with pytest.raises(FormatError):
        DynamicScene.load(out)


# ------------------------------------------------------------------------------------------ fly-through
def test_flythrough_path_and_times():
    scene = make_scene()
    cams = flythrough_cameras(scene.cameras, scene.gaussians[0], orbit_frames=4)
    assert cams.shape == (2 * 5 + 4,)
    torch.testing.assert_close(cams.c2w[:10], scene.cameras.flatten().c2w)
    times = flythrough_times(scene.camera_times, 2, 4)
    torch.testing.assert_close(times, torch.tensor([0, .25, .5, .75, 1] * 2 + [0, 1 / 3, 2 / 3, 1]))
    assert flythrough_cameras(scene.cameras, scene.gaussians[0], 0).shape == (10,)


def test_dynamic_frames_show_the_nearest_time():
    # Red at t=0, green at 0.5, blue at 1: the dominant colour of each frame says which set was rendered.
    scene = make_scene()
    cam = Cameras.from_fov(50.0, 32, 24).reshape(1)
    times = torch.tensor([0.0, 0.2, 0.26, 0.74, 0.76, 1.0])
    cams = Cameras(cam.K.expand(6, 3, 3), cam.c2w.expand(6, 4, 4), 32, 24)
    frames = list(dynamic_frames(scene, cams, times, backend="torch", progress=False))
    dominant = [int(f[8:16, 8:24].mean(dim=(0, 1)).argmax()) for f in frames]
    assert dominant == [0, 0, 1, 1, 2, 2]  # 0.25 / 0.75 are the boundaries
    with pytest.raises(ConfigError, match="5 times for 6 cameras"):
        next(dynamic_frames(scene, cams, times[:5]))
