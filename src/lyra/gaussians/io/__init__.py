"""Gaussian-splat files: ``load_gaussians(path)`` / ``save_gaussians(gaussians, path, **options)``.

The format follows the file extension (see :data:`FORMATS`):

========= ======================================================= =========================================
extension format                                                  options (``save`` / ``load``)
========= ======================================================= =========================================
``.ply``  INRIA 3DGS PLY (float32, logit opacity, log scale, SH)   ``ply_ascii`` (save)
``.splat`` antimatter15's 32-byte records (8-bit colour/rotation) none
``.spz``  Niantic SPZ (gzip v2/v3 or zstd v4 container)           ``spz_version`` (2, 3 default, 4),
                                                                   ``spz_fractional_bits``, ``spz_sh1_bits``,
                                                                   ``spz_sh_rest_bits`` (save);
                                                                   ``spz_coordinate_system`` (both)
``.glb``  glTF 2.0 binary, ``KHR_gaussian_splatting`` (float32)    none
``.sog``  PlayCanvas SOG version 2, bundled (ZIP of WebP + JSON)   ``sog_sh_palette``, ``sog_sh_iterations``
                                                                   (save)
========= ======================================================= =========================================

Writes are atomic (temp file + rename: a failed write never leaves a partial file) and the Gaussians are
validated first; reads check the file and validate what they decoded. Every problem a user can cause
raises a :class:`lyra.errors.LyraError` subclass with a one-line message.

Coordinates: lyra's Gaussians are in the OpenCV/RDF world; PLY, .splat and SOG store them as they are, SPZ
converts to its specified RUB convention (see :mod:`lyra.gaussians.io.spz`) and glTF to its +Y-up axes (the same
180° rotation about x; see :mod:`lyra.gaussians.io.gltf`).
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lyra.errors import ConfigError, FormatError, InputFileError, LyraError, OutputPathError
from lyra.fileio import atomic_path, check_input_file
from lyra.gaussians.gaussians import Gaussians
from lyra.gaussians.io.gltf import read_glb, write_glb
from lyra.gaussians.io.ply import read_ply, write_ply
from lyra.gaussians.io.sog import read_sog, write_sog
from lyra.gaussians.io.splat import read_splat, write_splat
from lyra.gaussians.io.spz import read_spz, read_spz_header, write_spz


@dataclass(frozen=True)
class GaussianFormat:
    """One file format: how to read and write it, and the options each direction accepts.

    Options are passed to :func:`save_gaussians` / :func:`load_gaussians` with the format's prefix
    (``spz_version=4``) and reach ``read`` / ``write`` without it (``version=4``).
    """

    extension: str
    name: str
    description: str
    read: Callable[..., Gaussians]
    write: Callable[..., None]
    prefix: str
    read_options: tuple[str, ...] = ()
    write_options: tuple[str, ...] = ()
    stores_sh: bool = True


#: Supported formats by file extension (lower case, with the dot).
FORMATS: dict[str, GaussianFormat] = {
    ".ply": GaussianFormat(".ply", "PLY", "INRIA 3D Gaussian Splatting PLY (float32, SH degree 0-3)",
                           read_ply, write_ply, "ply_", (), ("ascii",)),
    ".splat": GaussianFormat(".splat", "SPLAT", "antimatter15 .splat, 32-byte records (no SH, 8-bit colour)",
                             read_splat, write_splat, "splat_", (), (), stores_sh=False),
    ".spz": GaussianFormat(".spz", "SPZ", "Niantic SPZ compressed splats (versions 2-4, SH degree 0-3)",
                           read_spz, write_spz, "spz_", ("coordinate_system",),
                           ("version", "fractional_bits", "sh1_bits", "sh_rest_bits", "coordinate_system")),
    ".glb": GaussianFormat(".glb", "glTF", "binary glTF with KHR_gaussian_splatting (float32, SH degree 0-3, +Y up)",
                           read_glb, write_glb, "glb_"),
    ".sog": GaussianFormat(".sog", "SOG", "PlayCanvas SOG v2 bundle (WebP textures, codebooks, SH palette)",
                           read_sog, write_sog, "sog_", (), ("sh_palette", "sh_iterations")),
}


def supported_extensions() -> list[str]:
    """The file extensions lyra reads and writes, e.g. ``['.ply', '.splat', '.spz']``."""
    return list(FORMATS)


def format_for(path: str | os.PathLike, error: type[LyraError] = InputFileError) -> GaussianFormat:
    """The :class:`GaussianFormat` for ``path``'s extension; ``error`` (a LyraError class) if unknown."""
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        what = f"extension '{p.suffix}'" if p.suffix else "no extension"
        raise error(f"{p}: {what} is not a Gaussian-splat format lyra knows; use one of "
                    f"{', '.join(FORMATS)}")
    return fmt


def _strip_options(fmt: GaussianFormat, options: dict, allowed: tuple[str, ...], verb: str) -> dict:
    out = {}
    for key, value in options.items():
        short = key[len(fmt.prefix):] if key.startswith(fmt.prefix) else None
        if short not in allowed:
            accepted = ", ".join(fmt.prefix + a for a in allowed) or "none"
            raise ConfigError(f"option {key!r} does not apply when {verb} {fmt.extension} files "
                              f"(accepted: {accepted})")
        out[short] = value
    return out


def load_gaussians(path: str | os.PathLike, **options) -> Gaussians:
    """Read Gaussians from a ``.ply``, ``.splat``, ``.spz``, ``.glb`` or ``.sog`` file (by extension), on the CPU.

    Raises :class:`InputFileError` (missing, unreadable, empty file, unknown extension) or
    :class:`FormatError` (wrong content, truncated, non-finite values).
    """
    p = Path(path)
    fmt = format_for(p, InputFileError)
    kwargs = _strip_options(fmt, options, fmt.read_options, "reading")
    check_input_file(p)
    try:
        g = fmt.read(p, **kwargs)
    except LyraError:
        raise
    except OSError as e:
        raise InputFileError(f"{p}: cannot read the file ({e.strerror or e})") from e
    except (ValueError, EOFError, struct.error, zlib.error, zipfile.BadZipFile) as e:
        raise FormatError(f"{p}: not a valid {fmt.name} file ({e})") from e
    return g.validate(name=str(p))


def save_gaussians(gaussians: Gaussians, path: str | os.PathLike, **options) -> Path:
    """Write Gaussians to ``path`` in the format of its extension, atomically; returns the path.

    The Gaussians are detached, moved to the CPU and validated first (non-finite values, non-unit
    quaternions or non-positive scales raise :class:`FormatError` naming the field). Format options
    carry the format's prefix, e.g. ``save_gaussians(g, "scene.spz", spz_version=4)``.
    """
    p = Path(path)
    fmt = format_for(p, OutputPathError)
    kwargs = _strip_options(fmt, options, fmt.write_options, "writing")
    g = gaussians.detach().to("cpu").float().validate(name="Gaussians to save")
    parent = p.parent
    if parent.exists() and not parent.is_dir():
        raise OutputPathError(f"{p}: {parent} is a file, not a folder")
    try:
        with atomic_path(p) as tmp:
            fmt.write(g, tmp, **kwargs)
    except LyraError:
        raise
    except OSError as e:
        raise OutputPathError(f"{p}: cannot write the file ({e.strerror or e})") from e
    return p


__all__ = ["FORMATS", "GaussianFormat", "format_for", "load_gaussians", "read_glb", "read_ply", "read_sog",
           "read_splat", "read_spz", "read_spz_header", "save_gaussians", "supported_extensions", "write_glb",
           "write_ply", "write_sog", "write_splat", "write_spz"]
