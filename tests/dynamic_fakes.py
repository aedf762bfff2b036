"""Stand-ins for the dynamic teacher and the time-conditioned student (the real ones are integrated separately).

They follow :class:`lyra.pipeline_parts.DynamicTeacher` / :class:`~lyra.pipeline_parts.DynamicStudent` and
compute something checkable: the teacher draws the six GEN3C trajectories from the first frame's depth (real
trajectory code, zero latents); the student lifts the input frame nearest to the target time with its depth into
pixel-aligned Gaussians, with opacities that rise along each row (so pruning keeps a known set).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lyra.gaussians import Gaussians
from lyra.gaussians.from_depth import gaussians_from_depth
from lyra.geometry.cameras import Cameras
from lyra.geometry.trajectories import TRAJECTORY_NAMES, sample_gen3c_trajectories
from lyra.pipeline import DynamicTeacherOutput
from lyra.scene import nearest_time_index
from lyra.teacher.pipeline import center_depth


class FakeTeacher:
    """Records what it was given; returns the six GEN3C trajectories and zero latents ``[6, 16, t, H/8, W/8]``."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, frames: Tensor, depth: Tensor, cameras: Cameras, times: Tensor, *, seed: int,
                 steps: int) -> DynamicTeacherOutput:
        self.calls.append({"frames": frames, "depth": depth, "cameras": cameras, "times": times, "seed": seed,
                           "steps": steps})
        T, _, H, W = frames.shape
        cd = center_depth(depth[0])
        trajs = sample_gen3c_trajectories(cameras[0], cd, T, 1.0, torch.Generator().manual_seed(seed))
        latents = torch.zeros(6, 16, 1 + (T - 1) // 8, H // 8, W // 8)
        return DynamicTeacherOutput(latents, trajs, TRAJECTORY_NAMES, times.clone(), cd, {"denoise": 0.0},
                                    {"teacher": "fake"})


class FakeStudent:
    """Gaussians of the input frame nearest to the target time (pixel colours at the frame's depth)."""

    def __init__(self, teacher: FakeTeacher, stride: int = 2) -> None:
        self.teacher = teacher
        self.stride = stride
        self.asked: list[float] = []

    def __call__(self, out: DynamicTeacherOutput, target_time: float) -> Gaussians:
        self.asked.append(target_time)
        call = self.teacher.calls[-1]
        f = nearest_time_index(out.frame_times, target_time)
        cam = call["cameras"][f:f + 1]
        g = gaussians_from_depth(call["frames"][f:f + 1], call["depth"][f:f + 1], cam, stride=self.stride)
        g.opacities = torch.linspace(0.05, 0.95, len(g))  # the last 20 % are the most opaque
        return g
