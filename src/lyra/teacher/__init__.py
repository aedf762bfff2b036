"""The teacher: depth → 3D cache → warped views → camera-controlled video diffusion (GEN3C design).

* :mod:`~lyra.teacher.depth` — the depth-estimator protocol, user depth files, local ``transformers``
  depth models; :mod:`~lyra.teacher.depth_net` — the small depth network trained here
  (:mod:`~lyra.train.recipes.depth` trains it).
* :mod:`~lyra.teacher.cache3d` — the point cache of the input view and its z-buffered forward warp
  into any cameras (warped RGB, validity mask, depth).
* :mod:`~lyra.teacher.pipeline` — :class:`TeacherPipeline`: image → depth → trajectories → warp
  conditions → sampler → :class:`TeacherOutput` (normalised latents of the trajectory videos).
"""

from lyra.teacher.cache3d import PointCache, WarpResult, discontinuity_mask, warp
from lyra.teacher.depth import (
    DepthEstimator,
    DepthResult,
    FileDepth,
    TransformersDepth,
    disparity_to_depth,
    load_depth_estimator,
)
from lyra.teacher.depth_net import TinyDepthNet
from lyra.teacher.pipeline import TeacherOutput, TeacherPipeline

__all__ = [
    "DepthEstimator",
    "DepthResult",
    "FileDepth",
    "PointCache",
    "TeacherOutput",
    "TeacherPipeline",
    "TinyDepthNet",
    "TransformersDepth",
    "WarpResult",
    "discontinuity_mask",
    "disparity_to_depth",
    "load_depth_estimator",
    "warp",
]
