"""Hand-built scenes and cameras shared by the world tests."""

import math

import torch

from lyra.geometry.cameras import Cameras, look_at
from lyra.world import textures as T
from lyra.world.scene import Scene, SceneBuilder, rot_x, rot_y


def lights(b: SceneBuilder, sun=(0.0, -1.0, 0.0), extent: float = 10.0) -> None:
    """Neutral sky and light for hand-built test scenes (no haze)."""
    b.sky = [0.3, 0.5, 0.9, 0.8, 0.85, 0.95, 1.0, 1.0, 1.0, 0.0, 0.05, 0.0, 0.0]
    L = torch.nn.functional.normalize(torch.tensor(sun, dtype=torch.float32), dim=0).tolist()
    b.light = [*L, 1.0, 1.0, 1.0, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, math.inf, 0.0,
               0.0, 0.0, 5.0, extent, 40.0]


def primitives_scene() -> Scene:
    """Ground plane plus one of each primitive kind in front of the origin (camera looks along +z)."""
    b = SceneBuilder("outdoor", 0)
    lights(b)
    grey = b.material((0.5, 0.5, 0.5))
    checks = b.material((0.9, 0.9, 0.9), (0.1, 0.1, 0.1), T.PAT_CHECKS, 2.0)
    b.plane((0.0, -1.0, 0.0), 0.0, grey)
    o = b.new_object((0.0, 0.0, 6.0))
    b.ellipsoid(o, (0.0, -1.0, 6.0), (1.0, 0.7, 0.8), checks, rot=rot_y(0.4) @ rot_x(0.3))
    o = b.new_object((-2.5, 0.0, 7.0))
    b.box(o, (-2.5, -0.8, 7.0), (0.6, 0.8, 0.5), checks, rot=rot_y(0.7))
    o = b.new_object((2.5, 0.0, 7.0))
    b.cone(o, (2.5, -1.0, 7.0), 0.7, 1.0, 0.3, checks, rot=rot_y(0.2))
    return b.build()


def camera(eye=(0.0, -1.0, 0.0), target=(0.0, -1.0, 6.0), width: int = 64, height: int = 48,
           fov: float = 50.0) -> Cameras:
    c2w = look_at(torch.tensor(eye), torch.tensor(target))
    return Cameras.from_fov(fov, width, height, c2w)
