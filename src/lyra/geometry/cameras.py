"""Pinhole cameras in the OpenCV convention.

Conventions (fixed for the whole package):

* camera axes: x right, y down, z forward (OpenCV). Depth is z-depth along the camera axis.
* ``c2w`` [..., 4, 4]: camera-to-world rigid transform; column 3 is the camera centre in world units.
* ``K`` [..., 3, 3]: intrinsics in pixels, ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``. Pixel ``(i, j)``
  (column ``i``, row ``j``) has its centre at ``(i + 0.5, j + 0.5)``: the image spans ``[0, W] x [0, H]``.
* ``width``/``height``: the image size these intrinsics belong to (one size for the whole batch).

A ``Cameras`` holds any batch shape ``[...]`` (e.g. ``[V, T]`` for V trajectories of T frames).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lyra.errors import ConfigError


def intrinsics_from_fov(
    fov_y_deg: float | Tensor, width: int, height: int, fov_x_deg: float | Tensor | None = None
) -> Tensor:
    """Pinhole intrinsics ``[..., 3, 3]`` (pixels) from a vertical field of view in degrees.

    With no ``fov_x_deg`` the pixels are square (fx = fy); the principal point is the image centre.
    """
    fov_y = torch.as_tensor(fov_y_deg, dtype=torch.float32)
    fy = 0.5 * height / torch.tan(torch.deg2rad(fov_y) / 2)
    if fov_x_deg is None:
        fx = fy
    else:
        fx = 0.5 * width / torch.tan(torch.deg2rad(torch.as_tensor(fov_x_deg, dtype=torch.float32)) / 2)
    fx, fy = torch.broadcast_tensors(fx, fy)
    K = torch.zeros((*fx.shape, 3, 3), dtype=torch.float32)
    K[..., 0, 0] = fx
    K[..., 1, 1] = fy
    K[..., 0, 2] = width / 2
    K[..., 1, 2] = height / 2
    K[..., 2, 2] = 1.0
    return K


def look_at(eye: Tensor, target: Tensor, up: Tensor | Sequence[float] = (0.0, -1.0, 0.0)) -> Tensor:
    """Camera-to-world ``[..., 4, 4]`` of cameras at ``eye`` [..., 3] looking at ``target`` [..., 3].

    ``up`` is the world direction that should appear *up* in the image. Since image y points down
    (OpenCV), the camera's y axis is aligned with ``-up``. The default ``(0, -1, 0)`` is "world -y is
    up", which keeps an OpenCV camera with identity rotation upright.
    """
    eye = torch.as_tensor(eye, dtype=torch.float32)
    target = torch.as_tensor(target, dtype=torch.float32).to(eye)
    up = torch.as_tensor(up, dtype=eye.dtype, device=eye.device).expand_as(eye)
    z = torch.nn.functional.normalize(target - eye, dim=-1)
    x = torch.linalg.cross(-up, z, dim=-1)
    # Looking straight along `up`: pick any perpendicular x.
    degenerate = x.norm(dim=-1, keepdim=True) < 1e-8
    if degenerate.any():
        alt = torch.tensor([1.0, 0.0, 0.0], dtype=eye.dtype, device=eye.device).expand_as(eye)
        x = torch.where(degenerate, alt - (alt * z).sum(-1, keepdim=True) * z, x)
    x = torch.nn.functional.normalize(x, dim=-1)
    y = torch.linalg.cross(z, x, dim=-1)
    c2w = torch.zeros((*eye.shape[:-1], 4, 4), dtype=eye.dtype, device=eye.device)
    c2w[..., :3, 0] = x
    c2w[..., :3, 1] = y
    c2w[..., :3, 2] = z
    c2w[..., :3, 3] = eye
    c2w[..., 3, 3] = 1.0
    return c2w


@dataclass
class Cameras:
    """A batch of pinhole cameras sharing one image size.

    Attributes:
        K: intrinsics ``[..., 3, 3]`` in pixels.
        c2w: camera-to-world ``[..., 4, 4]``, OpenCV axes.
        width: image width in pixels.
        height: image height in pixels.
    """

    K: Tensor
    c2w: Tensor
    width: int
    height: int

    def __post_init__(self) -> None:
        self.K = torch.as_tensor(self.K, dtype=torch.float32)
        self.c2w = torch.as_tensor(self.c2w, dtype=torch.float32).to(self.K.device)
        if self.K.shape[-2:] != (3, 3) or self.c2w.shape[-2:] != (4, 4):
            raise ConfigError(f"Cameras: K must be [...,3,3] and c2w [...,4,4], got {tuple(self.K.shape)}, "
                              f"{tuple(self.c2w.shape)}")
        if self.K.shape[:-2] != self.c2w.shape[:-2]:
            shape = torch.broadcast_shapes(self.K.shape[:-2], self.c2w.shape[:-2])
            self.K = self.K.expand(*shape, 3, 3).contiguous()
            self.c2w = self.c2w.expand(*shape, 4, 4).contiguous()
        self.width = int(self.width)
        self.height = int(self.height)
        if self.width <= 0 or self.height <= 0:
            raise ConfigError(f"Cameras: image size must be positive, got {self.width}x{self.height}")

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_fov(
        cls, fov_y_deg: float, width: int, height: int, c2w: Tensor | None = None
    ) -> Cameras:
        """Cameras with square pixels, a centred principal point and vertical FoV ``fov_y_deg``.

        ``c2w`` [..., 4, 4] defaults to one camera at the origin looking down +z.
        """
        c2w = torch.eye(4) if c2w is None else torch.as_tensor(c2w, dtype=torch.float32)
        K = intrinsics_from_fov(fov_y_deg, width, height).to(c2w.device).expand(*c2w.shape[:-2], 3, 3)
        return cls(K.contiguous(), c2w, width, height)

    # ----------------------------------------------------------------- batch handling
    @property
    def shape(self) -> torch.Size:
        """Batch shape ``[...]``."""
        return self.c2w.shape[:-2]

    @property
    def device(self) -> torch.device:
        return self.c2w.device

    def __len__(self) -> int:
        return self.shape[0] if len(self.shape) else 1

    def __getitem__(self, index) -> Cameras:
        return Cameras(self.K[index], self.c2w[index], self.width, self.height)

    def reshape(self, *shape: int) -> Cameras:
        return Cameras(self.K.reshape(*shape, 3, 3), self.c2w.reshape(*shape, 4, 4), self.width, self.height)

    def flatten(self) -> Cameras:
        """The cameras as a flat batch ``[N]``."""
        return self.reshape(-1)

    def to(self, device: torch.device | str) -> Cameras:
        return Cameras(self.K.to(device), self.c2w.to(device), self.width, self.height)

    @staticmethod
    def cat(cameras: Sequence[Cameras], dim: int = 0) -> Cameras:
        """Concatenate batches of cameras of the same image size along ``dim``."""
        first = cameras[0]
        if any((c.width, c.height) != (first.width, first.height) for c in cameras):
            raise ConfigError("Cameras.cat: all cameras must share one image size")
        dim = dim if dim >= 0 else dim + len(first.shape)
        return Cameras(torch.cat([c.K for c in cameras], dim), torch.cat([c.c2w for c in cameras], dim),
                       first.width, first.height)

    # ----------------------------------------------------------------- derived quantities
    @property
    def w2c(self) -> Tensor:
        """World-to-camera ``[..., 4, 4]`` (inverse of a rigid transform, computed exactly)."""
        R = self.c2w[..., :3, :3]
        t = self.c2w[..., :3, 3:]
        out = torch.zeros_like(self.c2w)
        out[..., :3, :3] = R.transpose(-1, -2)
        out[..., :3, 3:] = -R.transpose(-1, -2) @ t
        out[..., 3, 3] = 1.0
        return out

    @property
    def centers(self) -> Tensor:
        """Camera centres in world coordinates ``[..., 3]``."""
        return self.c2w[..., :3, 3]

    @property
    def fov_y_deg(self) -> Tensor:
        """Vertical field of view in degrees ``[...]``."""
        return torch.rad2deg(2 * torch.atan(0.5 * self.height / self.K[..., 1, 1]))

    # ----------------------------------------------------------------- image-size changes
    def resize(self, width: int, height: int) -> Cameras:
        """The same cameras for an image resized (stretched) to ``width x height``.

        The pixel grid is rescaled so that a ray through a point at relative image position
        ``(u/W, v/H)`` hits the same world point before and after.
        """
        sx, sy = width / self.width, height / self.height
        K = self.K.clone()
        K[..., 0, :] *= sx
        K[..., 1, :] *= sy
        K[..., 2, :] = self.K[..., 2, :]
        return Cameras(K, self.c2w, width, height)

    def downscale(self, factor: int) -> Cameras:
        """Cameras for the image downscaled by an integer ``factor`` (e.g. 8 for latent resolution).

        Needs both sides divisible by ``factor``. Equivalent to ``K / factor`` on the first two rows.
        """
        if self.width % factor or self.height % factor:
            raise ConfigError(f"image size {self.width}x{self.height} is not divisible by {factor}")
        return self.resize(self.width // factor, self.height // factor)

    def crop(self, left: int, top: int, width: int, height: int) -> Cameras:
        """Cameras for the crop ``[top:top+height, left:left+width]`` of the image (rays unchanged)."""
        if left < 0 or top < 0 or left + width > self.width or top + height > self.height:
            raise ConfigError(
                f"crop ({left}, {top}, {width}x{height}) is outside the {self.width}x{self.height} image"
            )
        K = self.K.clone()
        K[..., 0, 2] -= left
        K[..., 1, 2] -= top
        return Cameras(K, self.c2w, width, height)

    def center_crop(self, width: int, height: int) -> Cameras:
        """Cameras for the centred crop of size ``width x height``."""
        return self.crop((self.width - width) // 2, (self.height - height) // 2, width, height)

    # ----------------------------------------------------------------- rays and projection
    def pixel_grid(self) -> Tensor:
        """Pixel centres ``[H, W, 2]`` as ``(u, v) = (i + 0.5, j + 0.5)``."""
        v, u = torch.meshgrid(
            torch.arange(self.height, dtype=torch.float32, device=self.device) + 0.5,
            torch.arange(self.width, dtype=torch.float32, device=self.device) + 0.5,
            indexing="ij",
        )
        return torch.stack([u, v], dim=-1)

    def rays(self, normalize: bool = True) -> tuple[Tensor, Tensor]:
        """Per-pixel rays in world space.

        Returns:
            origins ``[..., H, W, 3]`` and directions ``[..., H, W, 3]``. With ``normalize`` the
            directions have unit length; otherwise they have z = 1 in camera space, so that
            ``origin + depth * direction`` is the point at z-depth ``depth``.
        """
        uv = self.pixel_grid()  # [H, W, 2]
        K = self.K[..., None, None, :, :]
        x = (uv[..., 0] - K[..., 0, 2]) / K[..., 0, 0]
        y = (uv[..., 1] - K[..., 1, 2]) / K[..., 1, 1]
        # account for skew, if any: u = fx x + s y + cx
        x = x - K[..., 0, 1] * y / K[..., 0, 0]
        d_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)  # [..., H, W, 3]
        R = self.c2w[..., None, None, :3, :3]
        d = (R @ d_cam[..., None])[..., 0]
        if normalize:
            d = torch.nn.functional.normalize(d, dim=-1)
        o = self.centers[..., None, None, :].expand_as(d)
        return o, d

    def plucker(self) -> Tensor:
        """Plücker coordinates of the per-pixel rays, ``[..., 6, H, W]``: ``(o × d, d)`` with unit ``d``."""
        o, d = self.rays(normalize=True)
        m = torch.linalg.cross(o, d, dim=-1)
        return torch.cat([m, d], dim=-1).movedim(-1, -3)

    def project(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """Project world points ``[..., N, 3]`` (batch dims matching the cameras').

        Returns pixel coordinates ``[..., N, 2]`` (``(u, v)``, pixel centres at ``+0.5``) and z-depth
        ``[..., N]``. Points behind the camera get a negative depth; their ``uv`` is meaningless.
        """
        w2c = self.w2c
        p_cam = (w2c[..., None, :3, :3] @ points[..., None])[..., 0] + w2c[..., None, :3, 3]
        z = p_cam[..., 2]
        uvw = (self.K[..., None, :, :] @ p_cam[..., None])[..., 0]
        z_safe = torch.where(z.abs() < 1e-12, torch.full_like(z, 1e-12), z)
        uv = uvw[..., :2] / z_safe[..., None]
        return uv, z

    def unproject(self, depth: Tensor) -> Tensor:
        """World points ``[..., H, W, 3]`` of every pixel at z-depth ``depth`` ``[..., H, W]``."""
        o, d = self.rays(normalize=False)
        return o + d * depth[..., None]

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict:
        """JSON-able description (lists of floats); inverse of :meth:`from_dict`."""
        return {
            "width": self.width,
            "height": self.height,
            "shape": list(self.shape),
            "K": self.K.reshape(-1, 3, 3).tolist(),
            "c2w": self.c2w.reshape(-1, 4, 4).tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Cameras:
        shape = tuple(d.get("shape", [len(d["c2w"])]))
        K = torch.tensor(d["K"], dtype=torch.float32).reshape(*shape, 3, 3)
        c2w = torch.tensor(d["c2w"], dtype=torch.float32).reshape(*shape, 4, 4)
        return cls(K, c2w, int(d["width"]), int(d["height"]))


def fov_to_focal(fov_deg: float, size: int) -> float:
    """Focal length in pixels for a field of view ``fov_deg`` across ``size`` pixels."""
    return 0.5 * size / math.tan(math.radians(fov_deg) / 2)
