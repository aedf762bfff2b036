"""Cameras (OpenCV convention), rays, Plücker coordinates and camera trajectories."""

from lyra.geometry.cameras import Cameras, intrinsics_from_fov, look_at

__all__ = ["Cameras", "intrinsics_from_fov", "look_at"]
