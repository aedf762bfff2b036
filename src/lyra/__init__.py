"""lyra: one image (or one monocular video) → an explicit 3D Gaussian Splatting scene."""

__version__ = "0.1.0"
