"""A live web viewer for splat scenes (``viser``): splats, trajectory cameras and playback; 4D scenes get a time
slider."""

from lyra.viewer.app import Viewer, camera_poses, limit_splats, serve

__all__ = ["Viewer", "camera_poses", "limit_splats", "serve"]
