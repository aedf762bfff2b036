"""Readers of the real (photographed) evaluation data in ``../shared/data/real`` (its README gives the sources,
units, intrinsics and licences; this module encodes them).

Layout read (every part optional: a source whose files are absent is skipped)::

    rgbd/slambook2_ch5_kinect/color/N.png + depth/N.pgm        Kinect, depth in mm, K 518.0 519.0 325.5 253.5
    rgbd/slambook2_ch7_tum_fr2/N.png + N_depth.png             TUM fr2, depth / 5000 = m, K 520.9 521.0 325.1 249.7
    rgbd/metric3d_demo/{kitti,nyu}_demo/rgb/* + depth/*         KITTI (/256) and NYUv2 (/1000); K from the
                                                               test_annotations.json
    rgbd/open3d_testdata_other_formats/{TUM,SUN,NYU}_*         TUM (/5000), SUN RGB-D (bit-rotated, /1000), raw NYUv2
                                                               (little-endian Kinect disparity units); K: the
                                                               PrimeSense default 525, 525, 319.5, 239.5 (not given)
    stereo/middlebury_2001_2003/{tsukuba,venus,teddy,cones}/   rectified pairs, GT disparity of the left image in px
                                                               (tsukuba im3/im4 disp3 /16; venus im2/im6 disp2 /8;
                                                               teddy, cones im2/im6 disp2 /4; 0 = unknown); no K
    multiview/llff_fern/images_8/*.png + poses_bounds.npy       LLFF fern (20 views, LLFF [down, right, back] c2w at
                          + sparse/0/points3D.bin              4032 × 3024 with its focal), COLMAP sparse points
    multiview/scannet_unimatch_demo/color/*.png                ScanNet frames; K from intrinsic/intrinsic_depth.txt

Depth maps are z-depth in metres with 0 where unknown. A stereo pair's ``depth`` is ``1 / disparity`` (inverse
disparity: depth up to the unknown factor focal × baseline; Middlebury's 2001/2003 pairs have no disparity offset).
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lyra.geometry.intrinsics import intrinsics_matrix

__all__ = ["DATA_ENV", "FernSet", "RealImage", "StereoPair", "default_data_dir", "load_fern", "load_rgbd",
           "load_scannet", "load_stereo", "read_points3d_bin"]

#: Environment variable overriding the data folder.
DATA_ENV = "LYRA_REAL_DATA"
#: Open3D's PrimeSense default intrinsics (640 × 480), used where the README gives none for a Kinect-type frame.
PRIMESENSE_K = (525.0, 525.0, 319.5, 239.5)


def default_data_dir() -> Path:
    """``$LYRA_REAL_DATA``, else ``../shared/data/real`` next to the repository."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "real"


@dataclass
class RealImage:
    """One real photo: ``image`` ``[3, H, W]`` in [0, 1]; ``K`` ``[3, 3]`` pixel intrinsics (``None``: unknown);
    ``depth`` ``[H, W]`` (metric z-depth, or inverse disparity for stereo; 0 = unknown; ``None``: no depth)."""

    name: str
    source: str
    licence: str
    image: Tensor
    K: Tensor | None = None
    depth: Tensor | None = None
    outdoor: bool = False


@dataclass
class StereoPair:
    """A rectified pair: ``left`` as a :class:`RealImage` (``depth`` = 1 / disparity), ``right`` ``[3, H, W]`` and the
    left image's GT ``disparity`` ``[H, W]`` in pixels (0 = unknown)."""

    left: RealImage
    right: Tensor
    disparity: Tensor


@dataclass
class FernSet:
    """LLFF views: ``images`` ``[N, 3, H, W]``, ``c2w`` ``[N, 4, 4]`` (OpenCV, COLMAP units), ``K`` ``[3, 3]`` at
    ``H × W``, sparse COLMAP ``points`` ``[M, 3]`` in the same world frame."""

    name: str
    images: Tensor
    c2w: Tensor
    K: Tensor
    points: Tensor
    files: list[str] = field(default_factory=list)


def _rgb(path: Path) -> Tensor:
    from lyra.inputs import load_image

    return load_image(path)


def _array(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.array(im)


def _k(fx: float, fy: float, cx: float, cy: float) -> Tensor:
    return intrinsics_matrix(fx, fy, cx, cy)


def _depth_tensor(metres: np.ndarray) -> Tensor:
    d = np.asarray(metres, dtype=np.float64)
    d = np.where(np.isfinite(d) & (d > 0), d, 0.0)
    return torch.from_numpy(d.astype(np.float32))


def load_rgbd(root: Path) -> list[RealImage]:
    """Every RGB-D pair under ``root/rgbd`` (see the module doc), in a fixed order."""
    out: list[RealImage] = []
    base = root / "rgbd"
    d = base / "slambook2_ch5_kinect"
    for f in sorted((d / "color").glob("*.png"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0):
        dep = d / "depth" / f"{f.stem}.pgm"
        if dep.is_file():
            out.append(RealImage(f"kinect_dining/{f.stem}", "Kinect (slambook2 ch5)", "P", _rgb(f),
                                 _k(518.0, 519.0, 325.5, 253.5), _depth_tensor(_array(dep) / 1000.0)))
    d = base / "slambook2_ch7_tum_fr2"
    for f in sorted(d.glob("[0-9].png")):
        dep = d / f"{f.stem}_depth.png"
        if dep.is_file():
            out.append(RealImage(f"tum_fr2/{f.stem}", "TUM fr2 (slambook2 ch7)", "P", _rgb(f),
                                 _k(520.9, 521.0, 325.1, 249.7), _depth_tensor(_array(dep) / 5000.0)))
    for demo, label, lic, outdoor in (("kitti_demo", "KITTI (Metric3D demo)", "NC", True),
                                      ("nyu_demo", "NYUv2 (Metric3D demo)", "NC", False)):
        d = base / "metric3d_demo" / demo
        ann = d / "test_annotations.json"
        if not ann.is_file():
            continue
        files = json.loads(ann.read_text()).get("files", [])
        for item in sorted(files, key=lambda it: it["rgb"]):
            rgb, dep = d / "rgb" / Path(item["rgb"]).name, d / "depth" / Path(item["depth"]).name
            if rgb.is_file() and dep.is_file():
                out.append(RealImage(f"{demo.split('_')[0]}/{rgb.stem}", label, lic, _rgb(rgb), _k(*item["cam_in"]),
                                     _depth_tensor(_array(dep) / float(item["depth_scale"])), outdoor))
    d = base / "open3d_testdata_other_formats"
    if (d / "TUM_color.png").is_file() and (d / "TUM_depth.png").is_file():
        out.append(RealImage("open3d/TUM", "TUM (Open3D test data)", "P", _rgb(d / "TUM_color.png"),
                             _k(*PRIMESENSE_K), _depth_tensor(_array(d / "TUM_depth.png") / 5000.0)))
    if (d / "SUN_color.jpg").is_file() and (d / "SUN_depth.png").is_file():
        raw = _array(d / "SUN_depth.png").astype(np.uint32)
        rot = ((raw >> 3) | (raw << 13)) & 0xFFFF
        out.append(RealImage("open3d/SUN", "SUN RGB-D (Open3D test data)", "NC?", _rgb(d / "SUN_color.jpg"),
                             _k(*PRIMESENSE_K), _depth_tensor(rot / 1000.0)))
    if (d / "NYU_color.ppm").is_file() and (d / "NYU_depth.pgm").is_file():
        raw = _array(d / "NYU_depth.pgm").astype(np.uint16).byteswap().astype(np.float64)
        with np.errstate(divide="ignore"):
            metres = np.where((raw < 2047) & (raw < 1092.5), 351.3 / (1092.5 - raw), 0.0)
        out.append(RealImage("open3d/NYU", "NYUv2 raw (Open3D test data)", "NC?", _rgb(d / "NYU_color.ppm"),
                             _k(*PRIMESENSE_K), _depth_tensor(metres)))
    return out


#: Middlebury pairs: (folder, left, right, disparity file, disparity scale).
MIDDLEBURY = (("tsukuba", "im3.png", "im4.png", "disp3.pgm", 16.0), ("venus", "im2.png", "im6.png", "disp2.pgm", 8.0),
              ("teddy", "im2.png", "im6.png", "disp2.png", 4.0), ("cones", "im2.png", "im6.png", "disp2.png", 4.0))


def load_stereo(root: Path) -> list[StereoPair]:
    """The Middlebury pairs under ``root/stereo/middlebury_2001_2003`` (left image, right image, GT disparity)."""
    out = []
    base = root / "stereo" / "middlebury_2001_2003"
    for name, left, right, disp, scale in MIDDLEBURY:
        d = base / name
        if not all((d / f).is_file() for f in (left, right, disp)):
            continue
        disparity = torch.from_numpy(_array(d / disp).astype(np.float32) / scale)
        inv = torch.where(disparity > 0, 1.0 / disparity.clamp_min(1e-6), torch.zeros_like(disparity))
        out.append(StereoPair(RealImage(f"middlebury/{name}", "Middlebury 2001/2003", "P", _rgb(d / left), None, inv),
                              _rgb(d / right), disparity))
    return out


def read_points3d_bin(path: Path) -> Tensor:
    """The xyz ``[M, 3]`` of a COLMAP ``points3D.bin``."""
    data = path.read_bytes()
    (n,) = struct.unpack_from("<Q", data, 0)
    off, xyz = 8, []
    for _ in range(n):
        _pid, x, y, z = struct.unpack_from("<Qddd", data, off)
        off += 8 + 24 + 3 + 8  # id, xyz, rgb, error
        (track,) = struct.unpack_from("<Q", data, off)
        off += 8 + 8 * track
        xyz.append((x, y, z))
    return torch.tensor(xyz, dtype=torch.float64).reshape(-1, 3)


def llff_to_opencv(poses: np.ndarray) -> Tensor:
    """LLFF ``[N, 3, 5]`` poses (rotation columns [down, right, back], then the centre, then hwf) → OpenCV
    camera-to-world ``[N, 4, 4]`` (x right = LLFF's second column, y down = its first, z forward = −its third)."""
    p = torch.from_numpy(poses.astype(np.float64))
    c2w = torch.eye(4, dtype=torch.float64).repeat(p.shape[0], 1, 1)
    c2w[:, :3, 0] = p[:, :, 1]
    c2w[:, :3, 1] = p[:, :, 0]
    c2w[:, :3, 2] = -p[:, :, 2]
    c2w[:, :3, 3] = p[:, :, 3]
    return c2w


def load_fern(root: Path) -> FernSet | None:
    """LLFF fern (``root/multiview/llff_fern``), or ``None`` when its images, poses or sparse points are absent."""
    d = root / "multiview" / "llff_fern"
    files = sorted((d / "images_8").glob("*.png"))
    pb, pts = d / "poses_bounds.npy", d / "sparse" / "0" / "points3D.bin"
    if not files or not pb.is_file() or not pts.is_file():
        return None
    arr = np.load(pb, allow_pickle=False)
    if arr.shape[0] != len(files):
        return None
    poses = arr[:, :15].reshape(-1, 3, 5)
    images = torch.stack([_rgb(f) for f in files])
    H, W = images.shape[-2:]
    _h_full, w_full, f_full = (float(v) for v in poses[0, :, 4])
    f = f_full * W / w_full
    return FernSet("llff/fern", images, llff_to_opencv(poses).float(), _k(f, f, W / 2, H / 2),
                   read_points3d_bin(pts).float(), [x.name for x in files])


def load_scannet(root: Path) -> list[RealImage]:
    """The ScanNet colour frames (``root/multiview/scannet_unimatch_demo``) with their intrinsics (no depth)."""
    d = root / "multiview" / "scannet_unimatch_demo"
    kf = d / "intrinsic" / "intrinsic_depth.txt"
    if not kf.is_file():
        return []
    k = np.loadtxt(kf)
    K = _k(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]))
    return [RealImage(f"scannet/{f.stem}", "ScanNet (unimatch demo)", "NC", _rgb(f), K)
            for f in sorted((d / "color").glob("*.png"))]
