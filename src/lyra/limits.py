"""Limits of what lyra's readers accept, and bounded reading helpers.

Every reader checks the sizes a file *declares* (element counts, array shapes, image sizes) against the file's
real size and against the limits below **before** allocating memory for them, and decompresses in bounded steps,
so that a small hostile file (a gzip bomb, a header claiming billions of elements) fails with one line instead
of exhausting memory. ``docs/readers.md`` tabulates the readers and these limits.

``LYRA_MAX_GAUSSIANS`` in the environment raises :data:`MAX_GAUSSIANS` for machines with the memory for it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lyra.errors import FormatError

#: Most Gaussians a splat file may hold (official Lyra scenes: 10.2 M before pruning). ``$LYRA_MAX_GAUSSIANS``.
MAX_GAUSSIANS = int(os.environ.get("LYRA_MAX_GAUSSIANS", str(1 << 24)))
#: Largest JSON file read (camera paths, 4D scene index): 64 MiB.
MAX_JSON_BYTES = 64 << 20
#: Most cameras in one camera path.
MAX_CAMERA_FRAMES = 100_000
#: Largest side of an input image or depth map.
MAX_IMAGE_SIDE = 16384
#: Most pixels of an input image decoded at full size; larger ones are shrunk while decoding (8.8 MP, DCI 4K).
MAX_IMAGE_DECODE_PIXELS = 4096 * 2160
#: Most pixels of an input image at all (Pillow's own decompression-bomb threshold).
MAX_IMAGE_PIXELS = 178_956_970
#: Most pixels of a depth map (.npy or 16-bit .png): 8192², 256 MB as float32.
MAX_DEPTH_PIXELS = 8192 * 8192


def read_bytes_bounded(path: str | os.PathLike, limit: int, what: str) -> bytes:
    """The bytes of ``path``, refusing a file larger than ``limit`` bytes (FormatError)."""
    p = Path(path)
    size = p.stat().st_size
    if size > limit:
        raise FormatError(f"{p}: {size / 2**20:.1f} MiB is larger than lyra reads for {what} "
                          f"({limit / 2**20:.0f} MiB)")
    with open(p, "rb") as f:
        return f.read(limit + 1)[:limit]


def check_gaussian_count(path: str | os.PathLike, n: int, bytes_each: int, available: int | None,
                         what: str = "the header") -> None:
    """FormatError unless ``n`` Gaussians of ``bytes_each`` bytes fit in :data:`MAX_GAUSSIANS` and (when given) in
    the ``available`` bytes the file can hold (compressed data: its maximal expansion)."""
    if n > MAX_GAUSSIANS:
        raise FormatError(f"{path}: {what} claims {n:,} Gaussians, more than lyra reads ({MAX_GAUSSIANS:,}; set "
                          "LYRA_MAX_GAUSSIANS to raise the limit)")
    if available is not None and n * bytes_each > available:
        raise FormatError(f"{path}: {what} claims {n:,} Gaussians ({n * bytes_each:,} bytes) but the file can hold "
                          f"at most {available:,} bytes of them (corrupt or truncated)")


def npy_shape(path: str | os.PathLike) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a ``.npy`` header, checked against the file size (FormatError) before any data is read.

    Object arrays (pickles) are refused.
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unknown .npy version {version}")
            offset = f.tell()
    except (ValueError, OSError, SyntaxError, TypeError, KeyError) as e:
        raise FormatError(f"{p}: not a readable .npy array ({str(e)[:120]})") from None
    if dtype.hasobject:
        raise FormatError(f"{p}: the .npy array holds Python objects; lyra reads numbers only")
    count = 1
    for s in shape:
        count *= int(s)
    need = count * dtype.itemsize
    have = p.stat().st_size - offset
    if need > have:
        raise FormatError(f"{p}: the .npy header claims shape {tuple(shape)} ({need:,} bytes), the file holds "
                          f"{have:,} (truncated or corrupt)")
    return tuple(int(s) for s in shape), dtype
