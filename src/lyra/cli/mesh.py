"""``lyra mesh SCENE -o mesh.glb``: a vertex-coloured visual mesh and/or a physics collider from a splat scene."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lyra.errors import ConfigError, OutputPathError

DESCRIPTION = """\
Turn a Gaussian splat scene into triangle meshes for game engines and simulators.

Method: depth maps of the scene along its cameras are fused into a truncated signed distance grid (TSDF), the
zero level set is extracted by marching cubes (scikit-image), small disconnected pieces are dropped, and the mesh
is decimated by quadric edge collapse (fast-simplification). Depth comes from the rasterizer on CUDA, or on a CPU
from the Gaussians' centres splatted as discs, each pixel taking the median depth (--depth-source).

Cameras: --cameras FILE.json (the camera path `lyra generate --cameras` writes: the trajectories the scene was
generated along); without it, the six GEN3C trajectories from the input camera at the origin (OpenCV, looking
down +z), which is where lyra scenes come from.

Outputs (by extension): .glb, .obj, .ply, .usd/.usda/.usdc. -o writes the visual mesh (vertex colours, at most
--max-faces triangles); --collider FILE writes the collider (no colours, at most --collider-faces triangles,
holes filled where trimesh can close them; in USD with PhysicsCollisionAPI). .glb and USD use glTF's axes (+Y up,
the same as lyra's splat .glb/.spz, so they line up); .obj/.ply keep lyra's OpenCV world (like the splat .ply).
"""

EPILOG = """\
examples:
  lyra mesh scene.ply -o mesh.glb
  lyra mesh scene.ply -o mesh.usdc --collider collider.usdc --collider-faces 100000
  lyra mesh scene.spz --cameras cameras.json -o mesh.obj --resolution 192
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mesh", help="visual mesh and physics collider (GLB, OBJ, PLY, USD) from a splat scene",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scene", help="splat file (.ply, .splat, .spz, .glb, .sog)")
    add_mesh_arguments(p)
    p.add_argument("--cameras", default=None, metavar="FILE.json",
                   help="camera path to fuse depth from (lyra or nerfstudio JSON; default: the six GEN3C trajectories)")
    p.set_defaults(func=run)


def add_mesh_arguments(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """The mesh options shared by ``lyra mesh`` and ``lyra generate --mesh``."""
    from lyra.mesh import DEFAULT_COLLIDER_FACES, DEFAULT_RESOLUTION, DEFAULT_VISUAL_FACES

    if not prefix:
        p.add_argument("-o", "--output", default=None, metavar="MESH",
                       help="visual mesh file (.glb, .obj, .ply, .usd, .usda, .usdc)")
    p.add_argument(f"--{prefix}collider", default=None, metavar="FILE",
                   help="also (or instead) write a physics collider here (.glb, .obj, .ply, .usd, .usda, .usdc)")
    p.add_argument(f"--{prefix}collider-faces", type=int, default=DEFAULT_COLLIDER_FACES, metavar="N",
                   help=f"most triangles of the collider (default {DEFAULT_COLLIDER_FACES:,})")
    p.add_argument(f"--{prefix}max-faces", type=int, default=DEFAULT_VISUAL_FACES, metavar="N",
                   help=f"most triangles of the visual mesh (default {DEFAULT_VISUAL_FACES:,})")
    p.add_argument(f"--{prefix}resolution", type=int, default=DEFAULT_RESOLUTION, metavar="VOXELS",
                   help=f"TSDF voxels along the longest side of the seen region (default {DEFAULT_RESOLUTION})")
    p.add_argument(f"--{prefix}depth-source", choices=("auto", "render", "points"), default="auto",
                   help="depth maps from the rasterizer (render) or from splatted centres (points; fast on CPU); "
                   "auto: render on CUDA, points otherwise")


def check_mesh_options(output: str | None, collider: str | None, collider_faces: int, max_faces: int,
                       resolution: int) -> None:
    """Validate mesh options and output paths before any work (one-line errors)."""
    from lyra.mesh.export import check_mesh_path, probe_writable

    if output is None and collider is None:
        raise ConfigError("nothing to write: give -o MESH and/or --collider FILE")
    for name, v in (("--collider-faces", collider_faces), ("--max-faces", max_faces)):
        if v < 1:
            raise ConfigError(f"{name} must be a positive number of triangles, got {v}")
    if resolution < 8 or resolution > 1024:
        raise ConfigError(f"--resolution must lie in 8..1024 voxels, got {resolution}")
    outs = [o for o in (output, collider) if o]
    if len(outs) == 2 and Path(outs[0]).resolve() == Path(outs[1]).resolve():
        raise OutputPathError(f"{outs[0]}: the mesh and the collider need different files")
    for o in outs:
        probe_writable(check_mesh_path(o))


def write_meshes(gaussians, cameras, output: str | None, collider: str | None, collider_faces: int, max_faces: int,
                 resolution: int, depth_source: str = "auto") -> dict:
    """Build and write the meshes; returns the stats of :func:`lyra.mesh.build_meshes`."""
    from lyra.mesh import build_meshes
    from lyra.mesh.export import write_meshes_atomically

    res = build_meshes(gaussians, cameras, resolution=resolution, collider_faces=collider_faces,
                       visual_faces=max_faces, depth_source=depth_source)
    write_meshes_atomically([(m, p, physics) for m, p, physics in ((res.visual, output, False),
                                                                    (res.collider, collider, True)) if p])
    return res.stats


def run(args: argparse.Namespace) -> int:
    from lyra.gaussians.io import load_gaussians
    from lyra.mesh import default_cameras, load_cameras

    t0 = time.perf_counter()
    check_mesh_options(args.output, args.collider, args.collider_faces, args.max_faces, args.resolution)
    g = load_gaussians(args.scene)
    if len(g) == 0:
        raise ConfigError(f"{args.scene}: the scene has no Gaussians: there is no surface to mesh")
    cams = load_cameras(args.cameras) if args.cameras else default_cameras(g)
    stats = write_meshes(g, cams, args.output, args.collider, args.collider_faces, args.max_faces, args.resolution,
                         args.depth_source)
    parts = []
    if args.output:
        parts.append(f"{args.output} ({stats['visual_faces']:,} triangles, vertex colours)")
    if args.collider:
        parts.append(f"{args.collider} ({stats['collider_faces']:,} triangles, "
                     f"{'closed' if stats['collider_watertight'] else 'open where unseen'})")
    print(f"wrote {' and '.join(parts)} from {len(g):,} Gaussians, {stats['views']} depth maps "
          f"({stats['depth_source']}), "
          f"voxel {stats['voxel']:.3g}, {time.perf_counter() - t0:.1f} s")
    return 0
