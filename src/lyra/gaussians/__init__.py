"""3D Gaussians: the container, editing, and file formats (``lyra.gaussians.io``)."""

from lyra.gaussians.gaussians import (
    SH_C0,
    Gaussians,
    quat_multiply,
    quat_to_rotmat,
    rgb_to_sh_dc,
    rotmat_to_quat,
    sh_dc_to_rgb,
)

__all__ = ["SH_C0", "Gaussians", "quat_multiply", "quat_to_rotmat", "rgb_to_sh_dc", "rotmat_to_quat",
           "sh_dc_to_rgb"]
