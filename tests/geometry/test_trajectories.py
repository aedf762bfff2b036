import json
import math

import pytest
import torch

from lyra.errors import FormatError
from lyra.geometry.cameras import Cameras, look_at
from lyra.geometry.trajectories import (
    DISTANCE_RANGES,
    TRAJECTORY_NAMES,
    camera_path_dict,
    load_camera_path,
    orbit,
    sample_gen3c_trajectories,
    trajectory_positions,
)

CENTER = torch.tensor([0.5, -0.2, 2.0])


def input_camera() -> Cameras:
    return Cameras.from_fov(55.0, 320, 176, look_at(torch.tensor([0.5, -0.2, -1.0]), CENTER))


def test_first_camera_is_input_and_all_look_at_centre():
    cam = input_camera()
    trajs = sample_gen3c_trajectories(cam, 3.0, 17, generator=torch.Generator().manual_seed(0))
    assert trajs.shape == (6, 17)
    assert torch.allclose(trajs.c2w[:, 0], cam.c2w.expand(6, 4, 4), atol=1e-5)
    uv, z = trajs.project(CENTER.expand(6, 17, 1, 3))
    assert torch.allclose(uv[..., 0, :], torch.tensor([160.0, 88.0]).expand(6, 17, 2), atol=1e-3)
    assert (z > 0).all()
    R = trajs.c2w[..., :3, :3]
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3).expand(6, 17, 3, 3), atol=1e-5)


@pytest.mark.parametrize("name", TRAJECTORY_NAMES[:5])
def test_linear_step_formula(name):
    pos = trajectory_positions(name, center_depth=4.0, num_frames=121, distance=0.25)
    step = 0.25 * 4.0 / 121
    axis, sign = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "zoom_out": (2, -1), "zoom_in": (2, 1)}[name]
    expected = torch.zeros(121, 3)
    expected[:, axis] = sign * step * torch.arange(121)
    assert torch.allclose(pos, expected, atol=1e-6)


def test_spiral_two_clockwise_circles_returning_home():
    d, c, T = 0.5, 2.0, 121
    pos = trajectory_positions("spiral", c, T, d)
    assert torch.allclose(pos[0], torch.zeros(3), atol=1e-7)
    assert torch.allclose(pos[-1], torch.zeros(3), atol=1e-6)  # two full circles
    assert torch.allclose(pos[60], torch.zeros(3), atol=1e-6)  # one circle half-way
    assert pos[:, 0].min().item() == pytest.approx(-2 * 0.15 * d * c, rel=1e-3)
    assert pos[:, 1].abs().max().item() == pytest.approx(0.10 * d * c, rel=1e-3)
    assert (pos[:, 2] == 0).all()


def test_directions_in_world_match_names():
    cam = input_camera()
    trajs = sample_gen3c_trajectories(cam, 3.0, 9, distances=[0.3] * 6)
    local = (cam.w2c[:3, :3] @ (trajs.centers[:, -1] - cam.centers).T).T  # last positions, camera frame
    assert local[0, 0] < 0 and local[1, 0] > 0  # left, right
    assert local[2, 1] < 0  # up = -y in OpenCV
    assert local[3, 2] < 0 and local[4, 2] > 0  # zoom out, zoom in


def test_deterministic_and_distance_ranges():
    cam = input_camera()
    a = sample_gen3c_trajectories(cam, 2.0, 17, generator=torch.Generator().manual_seed(7))
    b = sample_gen3c_trajectories(cam, 2.0, 17, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.c2w, b.c2w)
    for seed in range(20):
        t = sample_gen3c_trajectories(cam, 1.0, 17, movement=2.0, generator=torch.Generator().manual_seed(seed))
        moved = (t.centers[:5, -1] - cam.centers).norm(dim=-1) * 17 / 16  # = d * c for linear ones
        for k, name in enumerate(TRAJECTORY_NAMES[:5]):
            lo, hi = DISTANCE_RANGES[name]
            assert 2 * lo - 1e-5 <= moved[k].item() <= 2 * hi + 1e-5


def test_orbit_looks_at_centre_and_keeps_radius():
    cams = orbit(CENTER, 2.5, 24, 64, 48, elevation_deg=20.0)
    assert torch.allclose((cams.centers - CENTER).norm(dim=-1), torch.full((24,), 2.5), atol=1e-5)
    uv, z = cams.project(CENTER.expand(24, 1, 3))
    assert torch.allclose(uv[:, 0], torch.tensor([32.0, 24.0]).expand(24, 2), atol=1e-3)
    # elevation: cameras sit above the centre (world up = -y)
    assert torch.allclose(CENTER[1] - cams.centers[:, 1], torch.full((24,), 2.5 * math.sin(math.radians(20))),
                          atol=1e-5)


def test_lyra_camera_path_round_trip(tmp_path):
    cams = sample_gen3c_trajectories(input_camera(), 3.0, 5, distances=[0.2] * 6)
    p = tmp_path / "path.json"
    p.write_text(json.dumps(camera_path_dict(cams)))
    back = load_camera_path(p)
    assert back.shape == (30,)
    assert torch.allclose(back.c2w, cams.flatten().c2w) and torch.allclose(back.K, cams.flatten().K)


def test_nerfstudio_transforms(tmp_path):
    gl = torch.eye(4)
    gl[:3, 3] = torch.tensor([1.0, 2.0, 3.0])
    data = {"fl_x": 100.0, "fl_y": 110.0, "cx": 32.0, "cy": 24.0, "w": 64, "h": 48,
            "frames": [{"file_path": "a.png", "transform_matrix": gl.tolist()}]}
    p = tmp_path / "transforms.json"
    p.write_text(json.dumps(data))
    cams = load_camera_path(p)
    assert cams.shape == (1,) and (cams.width, cams.height) == (64, 48)
    # OpenGL camera looks down -z with y up: in OpenCV the z axis flips and y flips
    assert torch.allclose(cams.c2w[0, :3, 2], torch.tensor([0.0, 0.0, -1.0]))
    assert torch.allclose(cams.c2w[0, :3, 1], torch.tensor([0.0, -1.0, 0.0]))
    assert torch.allclose(cams.centers[0], torch.tensor([1.0, 2.0, 3.0]))
    assert cams.K[0, 1, 1].item() == 110.0


@pytest.mark.parametrize("content, message", [
    ("{not json", "not a JSON camera path"),
    ('{"width": 10, "height": 10, "frames": []}', "non-empty"),
    ('{"width": 10, "height": 10, "frames": [{"c2w": [[1, 0], [0, 1]], "fov_y_deg": 50}]}', "4x4"),
    ('{"width": 10, "height": 10, "frames": [{"c2w": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]}',
     "'K' or 'fov_y_deg'"),
    ('{"frames": [{"transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]}', "'w'/'h'"),
])
def test_bad_camera_paths(tmp_path, content, message):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(FormatError, match=message):
        load_camera_path(p)
