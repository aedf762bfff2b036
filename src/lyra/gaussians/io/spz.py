"""Niantic's ``.spz`` compressed Gaussian-splat format: read versions 2, 3 and 4; write 2, 3 (default), 4.

Format (after nianticlabs/spz ``load-spz.cc``; all integers little-endian)
--------------------------------------------------------------------------
Both containers carry the same six *sections*, each attribute of all N Gaussians back to back, in
this order:

=========== ============= ==================================================================
section     bytes         encoding
=========== ============= ==================================================================
positions   9·N           x, y, z as 24-bit signed fixed point, ``fractionalBits`` fraction bits
alphas      N             ``round(sigmoid(logit) · 255)`` = ``round(opacity · 255)``
colors      3·N           SH DC ``f_dc``: ``round(f_dc · 0.15 · 255 + 127.5)``
scales      3·N           ``round((ln(scale) + 10) · 16)``
rotations   3·N or 4·N    v2: x, y, z of the unit quaternion with w ≥ 0, ``round(q · 127.5 + 127.5)``;
                          v3+: "smallest three": a u32 whose top 2 bits index the largest |component|
                          (xyzw order) and whose lower 30 bits hold the other three as sign bit + 9-bit
                          magnitude ``round(511 · |q_i| / √½)``, the first remaining component highest
sh          3·K·N         per Gaussian K coefficients × RGB (channel fastest), ``round(x·128) + 128``,
                          then rounded to buckets of ``2^(8 - bits)`` (5 bits for degree 1, 4 bits for
                          degrees 2+, the reference's defaults); decoded as ``(b - 128) / 128``
=========== ============= ==================================================================

(every ``round`` clamps to [0, 255]). Containers:

* **v2 / v3 (legacy)** — one gzip stream of a 16-byte header ``magic u32 (0x5053474e "NGSP"), version u32,
  numPoints u32, shDegree u8, fractionalBits u8, flags u8, reserved u8`` followed by the sections and, when
  ``flags & 0x2``, extension records at the end.
* **v4 (NGSP)** — *no* outer gzip: a plain 32-byte header ``magic, version, numPoints, shDegree,
  fractionalBits, flags, numStreams u8, tocByteOffset u32, reserved[12]``; extension records (when
  ``flags & 0x2``) from byte 32 up to ``tocByteOffset``; at ``tocByteOffset`` a table of contents of
  ``numStreams × (compressedSize u64, uncompressedSize u64)``; then each non-empty section as its own
  **zstd** frame, in section order (the SH stream is absent for degree 0). Rotations are smallest-three.

Extension records are ``type u32, byteLength u32, payload``; unknown types are skipped. The one that
changes decoding, ``SPZ_ADOBE_coordinate_system`` (``0xADBE0003``, payload a u32 coordinate-system code),
is honoured when reading; lyra never writes extensions.

Coordinate system
-----------------
The SPZ specification stores data in **RUB** (x right, y up, z back: OpenGL / three.js). lyra's
Gaussians live in the **RDF** (OpenCV: x right, y down, z forward) world, the convention of INRIA PLY
files. By default the writer converts RDF → RUB (y and z negated, quaternions conjugated by the 180°
rotation about x, SH coefficients sign-flipped band by band) and the reader converts back, so a file
written here and loaded by the reference library with ``UnpackOptions.to = RDF`` (or by any reader that
follows the specification) gives back exactly our values, to the quantisation below.

Many files in the wild, however, store PLY data unconverted: Niantic's own ``ply_to_spz`` tool and
``gsply`` apply no conversion. For those, pass ``coordinate_system="RDF"`` to both reader and writer: the
arrays then go to and come from the file as they are, and ``gsply.read_spz`` returns our values exactly.
A coordinate-system extension in a file overrides the ``coordinate_system`` option when reading.

Reading keeps the stored values: opacity = byte / 255 (the reference clamps to [1/255, 254/255] because
it returns logits; lyra's writers clamp only when they take a logit), the antialiasing flag is reported by
:func:`read_spz_header` but not used, and bytes after the last stream are ignored.

Precision of a round trip (writer → reader), all bounds exact for the default settings:

* positions: ±2^-(fractionalBits+1) (±1.2e-4 with the default 12 bits; |coordinate| < 2048)
* opacity: ±0.5/255; colour (``0.5 + SH_C0·f_dc``): ±0.5·SH_C0/(0.15·255) ≈ ±3.69e-3 within
  [0.5 − 3.33·SH_C0, 0.5 + 3.33·SH_C0] ≈ [−0.44, 1.44]
* scale: relative ±(e^(1/32) − 1) ≈ 3.2 % for ln(scale) in [−10, 5.94]
* rotation: v3/v4 each quaternion component ±√½/(2·511) before renormalising; v2 ±0.5/127.5 on x, y, z
* SH: ±(0.5 + 2^(7-bits))/128 for coefficients in [−1, 127/128] (±0.035 for degree 1, ±0.066 above)
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lyra.errors import ConfigError, FormatError, InputFileError
from lyra.gaussians.gaussians import SH_C0, Gaussians, rotmat_to_quat
from lyra.limits import check_gaussian_count

MAGIC = 0x5053474E  # "NGSP"
COLOR_SCALE = 0.15
LEGACY_HEADER = struct.Struct("<IIIBBBB")  # 16 bytes, inside the gzip stream (v1-v3)
NGSP_HEADER = struct.Struct("<IIIBBBBI12x")  # 32 bytes, plain (v4)
TOC_ENTRY = struct.Struct("<QQ")
EXT_RECORD = struct.Struct("<II")
EXT_COORDINATE_SYSTEM = 0xADBE0003
FLAG_ANTIALIASED = 0x1
FLAG_HAS_EXTENSIONS = 0x2
READ_VERSIONS = (2, 3, 4)
WRITE_VERSIONS = (2, 3, 4)
MAX_SH_DEGREE = 3
DEFAULT_FRACTIONAL_BITS = 12
DEFAULT_SH1_BITS = 5
DEFAULT_SH_REST_BITS = 4
GZIP_LEVEL = 6  # zlib's default, as the reference
ZSTD_LEVEL = 12  # the reference's level

#: SPZ coordinate-system codes (``spz::CoordinateSystem``): index = code. Letters give the directions of
#: the x, y and z axes (Right/Left, Up/Down, Front/Back).
COORDINATE_SYSTEMS: tuple[str, ...] = (
    "UNSPECIFIED", "LDB", "RDB", "LUB", "RUB", "LDF", "RDF", "LUF", "RUF",
    "LFD", "RFD", "LFU", "RFU", "LBD", "RBD", "LBU", "RBU",
)
#: The convention of lyra's Gaussians (OpenCV) and of INRIA PLY files.
LYRA_COORDINATES = "RDF"
#: The convention the SPZ specification stores.
SPZ_COORDINATES = "RUB"

_SQRT1_2 = math.sqrt(0.5)
_AXIS = {"R": (1, 0, 0), "L": (-1, 0, 0), "U": (0, 1, 0), "D": (0, -1, 0), "B": (0, 0, 1), "F": (0, 0, -1)}


@dataclass(frozen=True)
class SpzHeader:
    """What an SPZ file's header (and extensions) say."""

    version: int
    num_points: int
    sh_degree: int
    fractional_bits: int
    flags: int
    coordinate_system: str | None  # declared by a coordinate-system extension, else None

    @property
    def antialiased(self) -> bool:
        return bool(self.flags & FLAG_ANTIALIASED)


# ----------------------------------------------------------------------------- coordinate systems
def _axes(name: str) -> np.ndarray:
    """[3, 3] matrix whose columns are the system's x, y, z axes expressed in RUB."""
    return np.array([_AXIS[c] for c in name], dtype=np.float64).T


def coordinate_conversion(src: str, dst: str) -> np.ndarray:
    """Signed permutation ``M`` [3, 3] with ``p_dst = M @ p_src`` between two named coordinate systems."""
    return _axes(dst).T @ _axes(src)


def _check_system(name: str, what: str) -> str:
    up = str(name).upper()
    if up not in COORDINATE_SYSTEMS[1:]:
        raise ConfigError(f"{what}: unknown coordinate system {name!r}; use one of "
                          f"{', '.join(COORDINATE_SYSTEMS[1:])} (RUB = SPZ specification, RDF = PLY/OpenCV)")
    return up


def sh_basis(dirs: np.ndarray, degree: int) -> np.ndarray:
    """Real SH basis without the DC term, gsplat/INRIA order and signs: ``[M, (degree+1)^2 - 1]``."""
    x, y, z = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    out = []
    if degree >= 1:
        c1 = 0.4886025119029199
        out += [-c1 * y, c1 * z, -c1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [1.0925484305920792 * x * y, -1.0925484305920792 * y * z,
                0.31539156525252005 * (2 * zz - xx - yy), -1.0925484305920792 * x * z,
                0.5462742152960396 * (xx - yy)]
    if degree >= 3:
        out += [-0.5900435899266435 * y * (3 * xx - yy), 2.890611442640554 * x * y * z,
                -0.4570457994644658 * y * (4 * zz - xx - yy), 0.3731763325901154 * z * (2 * zz - 3 * xx - 3 * yy),
                -0.4570457994644658 * x * (4 * zz - xx - yy), 1.445305721320277 * z * (xx - yy),
                -0.5900435899266435 * x * (xx - 3 * yy)]
    if degree > 3:
        raise FormatError(f"SH degree {degree} is not supported (lyra handles degrees 0-3)")
    return np.stack(out, -1) if out else np.zeros((len(dirs), 0))


def sh_transform(M: np.ndarray, degree: int) -> np.ndarray:
    """Matrix ``D`` [K, K] taking SH coefficients to the frame ``p' = M p`` (M orthogonal): ``c' = D c``.

    Found by least squares on the identity ``f'(d) = f(Mᵀ d)``; entries within 1e-9 of an integer are
    snapped, so axis flips give exact ±1 diagonals (the reference's ``flipSh`` table).
    """
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(64, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    Y = sh_basis(dirs, degree)
    D = np.linalg.lstsq(Y, sh_basis(dirs @ M, degree), rcond=None)[0]
    near = np.abs(D - np.round(D)) < 1e-9
    D[near] = np.round(D[near])
    return D


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


def convert_coordinates(means: np.ndarray, quats: np.ndarray, sh_rest: np.ndarray | None,
                        M: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Express Gaussians in the frame ``p' = M p`` (M a signed permutation).

    ``means`` [N, 3], ``quats`` [N, 4] wxyz, ``sh_rest`` [N, K, 3] | None. Axis flips (diagonal M) are
    exact sign changes: quaternion x, y, z are multiplied by ``(M_yy M_zz, M_xx M_zz, M_xx M_yy)`` as the
    reference does; other M compose the rotation ``det(M)·M`` on the left. Scales are unchanged.
    """
    if np.array_equal(M, np.eye(3)):
        return means, quats, sh_rest
    if np.array_equal(M, np.diag(np.diag(M))):
        f = np.diag(M)
        means = means * f.astype(np.float32)
        quats = quats * np.array([1, f[1] * f[2], f[0] * f[2], f[0] * f[1]], dtype=np.float32)
    else:
        means = (means.astype(np.float64) @ M.T).astype(np.float32)
        R = M * np.linalg.det(M)
        q_r = rotmat_to_quat(torch.from_numpy(R)).numpy()
        quats = _quat_mul(q_r, quats.astype(np.float64)).astype(np.float32)
    if sh_rest is not None and sh_rest.shape[1]:
        degree = int(round(math.sqrt(sh_rest.shape[1] + 1))) - 1
        D = sh_transform(M, degree)
        if np.array_equal(D, np.diag(np.diag(D))):
            sh_rest = sh_rest * np.diag(D).astype(np.float32)[None, :, None]
        else:
            sh_rest = np.einsum("kj,njc->nkc", D, sh_rest.astype(np.float64)).astype(np.float32)
    return means, quats, sh_rest


# ----------------------------------------------------------------------------- small helpers
def _round(x: np.ndarray) -> np.ndarray:
    """Round half away from zero (C's ``std::round``), as float64."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(_round(x), 0, 255).astype(np.uint8)


def _sections_layout(n: int, sh_dim: int, rot_bytes: int) -> list[tuple[str, int]]:
    return [("positions", 9 * n), ("alphas", n), ("colors", 3 * n), ("scales", 3 * n),
            ("rotations", rot_bytes * n), ("sh", 3 * sh_dim * n)]


def _sh_dim(degree: int) -> int:
    return (degree + 1) ** 2 - 1


def _zstd():
    try:
        import zstandard
    except ImportError:  # pragma: no cover - zstandard is a dependency of lyra
        return None
    return zstandard


def _parse_extensions(blob: bytes) -> str | None:
    """Walk ``type u32, byteLength u32, payload`` records; return a declared coordinate system, if any."""
    system = None
    pos = 0
    while pos + EXT_RECORD.size <= len(blob):
        kind, length = EXT_RECORD.unpack_from(blob, pos)
        pos += EXT_RECORD.size
        if pos + length > len(blob):
            break
        if kind == EXT_COORDINATE_SYSTEM and length >= 4:
            code = struct.unpack_from("<I", blob, pos)[0]
            if code < len(COORDINATE_SYSTEMS):
                system = "RUB" if code == 0 else COORDINATE_SYSTEMS[code]  # UNSPECIFIED resolves to RUB
        pos += length
    return system


# ----------------------------------------------------------------------------- container parsing
def _check_header(path: Path, version: int, n: int, degree: int, fbits: int) -> None:
    if version == 1:
        raise FormatError(f"{path}: SPZ version 1 (float16 positions, never released) is not supported")
    if version not in READ_VERSIONS:
        raise FormatError(f"{path}: SPZ version {version} is not supported (lyra reads versions "
                          f"{', '.join(map(str, READ_VERSIONS))})")
    if degree > MAX_SH_DEGREE:
        raise FormatError(f"{path}: SH degree {degree} is not supported (lyra reads degrees 0-{MAX_SH_DEGREE})")
    if not 0 <= fbits <= 24:
        raise FormatError(f"{path}: invalid fractionalBits {fbits} in the SPZ header (expected 0-24)")


#: Most bytes a gzip stream expands one byte into (deflate's limit is 1032:1).
GZIP_MAX_RATIO = 1032
#: Most bytes of extension records accepted after the Gaussian data of a legacy SPZ.
MAX_EXTENSION_BYTES = 1 << 20
_INFLATE_STEP = 16 << 20


def _inflate(path: Path, d: zlib._Decompress, tail: bytes, want: int) -> tuple[bytes, bytes]:
    """Inflate at most ``want`` more bytes from ``tail`` in bounded steps; (output, unconsumed input)."""
    out = bytearray()
    try:
        while len(out) < want and not d.eof:
            chunk = d.decompress(tail, min(_INFLATE_STEP, want - len(out)))
            tail = d.unconsumed_tail
            out += chunk
            if not chunk:
                break
    except zlib.error as e:
        raise FormatError(f"{path}: corrupt gzip data in the SPZ file ({e})") from e
    return bytes(out), tail


def _read_legacy(path: Path, data: bytes) -> tuple[SpzHeader, np.ndarray]:
    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    head, tail = _inflate(path, d, data, LEGACY_HEADER.size)
    if len(head) < LEGACY_HEADER.size:
        if not d.eof:
            raise FormatError(f"{path}: the SPZ file is truncated (its gzip stream ends early)")
        raise FormatError(f"{path}: the SPZ payload is only {len(head)} bytes, too short for a header")
    magic, version, n, degree, fbits, flags, _ = LEGACY_HEADER.unpack_from(head, 0)
    if magic != MAGIC:
        raise FormatError(f"{path}: not an SPZ file (gzip data without the NGSP magic)")
    _check_header(path, version, n, degree, fbits)
    rot_bytes = 4 if version >= 3 else 3
    each = sum(size for _, size in _sections_layout(1, _sh_dim(degree), rot_bytes))
    check_gaussian_count(path, n, each, GZIP_MAX_RATIO * len(data))
    need = n * each
    # Inflate what the Gaussians need plus room for extensions, never more (a gzip bomb stops here).
    body, tail = _inflate(path, d, tail, need + MAX_EXTENSION_BYTES)
    if not d.eof and len(body) < need:
        raise FormatError(f"{path}: the SPZ file is truncated (its gzip stream ends early)")
    if not d.eof:
        raise FormatError(f"{path}: the SPZ data expands beyond what {n:,} Gaussians need (a decompression bomb "
                          "or a corrupt header)")
    if len(body) < need:
        raise FormatError(f"{path}: the SPZ file is truncated ({len(body)} bytes of Gaussian data, {n} Gaussians "
                          f"need {need})")
    system = _parse_extensions(body[need:]) if flags & FLAG_HAS_EXTENSIONS else None
    payload = np.frombuffer(body, dtype=np.uint8, count=need)
    return SpzHeader(version, n, degree, fbits, flags, system), payload


def _read_ngsp(path: Path, data: bytes) -> tuple[SpzHeader, np.ndarray]:
    if len(data) < NGSP_HEADER.size:
        raise FormatError(f"{path}: the SPZ file is truncated ({len(data)} bytes, the v4 header needs 32)")
    magic, version, n, degree, fbits, flags, num_streams, toc = NGSP_HEADER.unpack_from(data, 0)
    if version < 4:
        raise FormatError(f"{path}: SPZ version {version} in an uncompressed (version 4) container")
    _check_header(path, version, n, degree, fbits)
    check_gaussian_count(path, n, 1, None)
    layout = [(name, size) for name, size in _sections_layout(n, _sh_dim(degree), 4) if size > 0]
    if num_streams != len(layout):
        raise FormatError(f"{path}: the SPZ file lists {num_streams} streams, {n} Gaussians of SH degree "
                          f"{degree} need {len(layout)}")
    toc_end = toc + TOC_ENTRY.size * num_streams
    if toc < NGSP_HEADER.size or toc_end > len(data):
        raise FormatError(f"{path}: the SPZ file is truncated or corrupt (table of contents at bytes "
                          f"{toc}-{toc_end}, file has {len(data)})")
    system = _parse_extensions(data[NGSP_HEADER.size:toc]) if flags & FLAG_HAS_EXTENSIONS else None
    zstd = _zstd()
    if zstd is None and layout:
        raise InputFileError(f"{path}: reading SPZ version 4 needs the 'zstandard' package "
                             "(pip install zstandard)")
    payload = np.empty(sum(size for _, size in layout), dtype=np.uint8)
    offset, out = toc_end, 0
    for i, (name, size) in enumerate(layout):
        csize, usize = TOC_ENTRY.unpack_from(data, toc + i * TOC_ENTRY.size)
        if usize != size:
            raise FormatError(f"{path}: SPZ stream '{name}' holds {usize} bytes, {n} Gaussians need {size}")
        if offset + csize > len(data):
            raise FormatError(f"{path}: the SPZ file is truncated (stream '{name}' ends at byte "
                              f"{offset + csize}, file has {len(data)})")
        try:
            chunk = zstd.ZstdDecompressor().decompress(data[offset:offset + csize], max_output_size=size)
        except zstd.ZstdError as e:
            raise FormatError(f"{path}: corrupt zstd data in SPZ stream '{name}' ({e})") from e
        if len(chunk) != size:
            raise FormatError(f"{path}: SPZ stream '{name}' decompressed to {len(chunk)} bytes, expected {size}")
        payload[out:out + size] = np.frombuffer(chunk, dtype=np.uint8)
        offset += csize
        out += size
    return SpzHeader(version, n, degree, fbits, flags, system), payload


def _read_container(path: Path) -> tuple[SpzHeader, np.ndarray]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        return _read_legacy(path, data)
    if len(data) >= 4 and struct.unpack_from("<I", data, 0)[0] == MAGIC:
        return _read_ngsp(path, data)
    raise FormatError(f"{path}: not an SPZ file (neither a gzip stream nor an NGSP header; starts with "
                      f"{data[:8]!r})")


def read_spz_header(path: str | Path) -> SpzHeader:
    """The header of an SPZ file (decompresses the legacy container's payload to reach it)."""
    return _read_container(Path(path))[0]


# ----------------------------------------------------------------------------- decoding
def _decode_smallest_three(packed: np.ndarray) -> np.ndarray:
    """u8 [N, 4] smallest-three → float64 quaternions [N, 4] in **xyzw** order."""
    comp = packed.view("<u4")[:, 0].astype(np.int64)
    largest = comp >> 30
    # The stored components are the non-largest axes in descending order, lowest bits first.
    order = np.array([[a for a in (3, 2, 1, 0) if a != big] for big in range(4)])  # [4, 3]
    q = np.zeros((len(comp), 4))
    rows = np.arange(len(comp))
    for slot in range(3):
        bits = (comp >> (10 * slot)) & 0x3FF
        value = _SQRT1_2 * (bits & 0x1FF) / 511.0
        value = np.where(bits >> 9 == 1, -value, value)
        q[rows, order[largest, slot]] = value
    q[rows, largest] = np.sqrt(np.maximum(0.0, 1.0 - (q * q).sum(1)))
    return q


def _decode(header: SpzHeader, payload: np.ndarray) -> tuple[np.ndarray, ...]:
    """Payload → (means, quats wxyz, scales, opacities, colors, sh_rest | None), file coordinates."""
    n, k = header.num_points, _sh_dim(header.sh_degree)
    rot_bytes = 4 if header.version >= 3 else 3
    parts, pos = {}, 0
    for name, size in _sections_layout(n, k, rot_bytes):
        parts[name] = payload[pos:pos + size]
        pos += size
    p = parts["positions"].reshape(n, 3, 3).astype(np.int32)
    fixed = p[..., 0] | (p[..., 1] << 8) | (p[..., 2] << 16)
    fixed = (fixed ^ 0x800000) - 0x800000  # sign-extend 24 bits
    means = (fixed.astype(np.float64) * 2.0 ** -header.fractional_bits).astype(np.float32)
    opacities = (parts["alphas"].astype(np.float32) / np.float32(255.0))
    f_dc = (parts["colors"].reshape(n, 3).astype(np.float64) / 255.0 - 0.5) / COLOR_SCALE
    colors = (f_dc * SH_C0 + 0.5).astype(np.float32)
    scales = np.exp(parts["scales"].reshape(n, 3).astype(np.float64) / 16.0 - 10.0).astype(np.float32)
    if rot_bytes == 4:
        xyzw = _decode_smallest_three(parts["rotations"].reshape(n, 4))
    else:
        xyz = parts["rotations"].reshape(n, 3).astype(np.float64) / 127.5 - 1.0
        xyzw = np.concatenate([xyz, np.sqrt(np.maximum(0.0, 1.0 - (xyz * xyz).sum(1, keepdims=True)))], 1)
    quats = xyzw[:, [3, 0, 1, 2]]
    quats = (quats / np.linalg.norm(quats, axis=1, keepdims=True)).astype(np.float32)
    sh_rest = None
    if k:
        sh_rest = ((parts["sh"].reshape(n, k, 3).astype(np.float32) - 128.0) / np.float32(128.0))
    return means, quats, scales, opacities, colors, sh_rest


def read_spz(path: str | Path, *, coordinate_system: str = SPZ_COORDINATES) -> Gaussians:
    """Read an SPZ file (version 2, 3 or 4) into lyra's RDF world.

    ``coordinate_system`` names the convention of the file's data when the file does not declare one
    itself: ``"RUB"`` (the specification, default) or ``"RDF"`` (unconverted PLY data, as written by
    ``gsply`` or Niantic's ``ply_to_spz``); any of :data:`COORDINATE_SYSTEMS` works.
    """
    path = Path(path)
    source = _check_system(coordinate_system, "spz_coordinate_system")
    header, payload = _read_container(path)
    means, quats, scales, opacities, colors, sh_rest = _decode(header, payload)
    M = coordinate_conversion(header.coordinate_system or source, LYRA_COORDINATES)
    means, quats, sh_rest = convert_coordinates(means, quats, sh_rest, M)
    t = torch.from_numpy
    return Gaussians(t(np.ascontiguousarray(means)), t(np.ascontiguousarray(quats)), t(scales), t(opacities),
                     t(colors), None if sh_rest is None else t(np.ascontiguousarray(sh_rest)))


# ----------------------------------------------------------------------------- encoding
def _encode_smallest_three(xyzw: np.ndarray) -> np.ndarray:
    """float64 unit quaternions [N, 4] (xyzw) → u8 [N, 4], as ``packQuaternionSmallestThree``."""
    n = len(xyzw)
    largest = np.argmax(np.abs(xyzw), axis=1)  # first maximum, like the reference's strict '>'
    rows = np.arange(n)
    negate = xyzw[rows, largest] < 0
    comp = largest.astype(np.uint32)
    for axis in range(4):
        keep = largest != axis
        value = xyzw[:, axis]
        negbit = ((value < 0) ^ negate).astype(np.uint32)
        mag = np.minimum(np.floor(511.0 * np.abs(value) / _SQRT1_2 + 0.5), 511).astype(np.uint32)
        comp = np.where(keep, (comp << 10) | (negbit << 9) | mag, comp)
    return comp.astype("<u4").view(np.uint8).reshape(n, 4)


def _quantize_sh(x: np.ndarray, bits: int) -> np.ndarray:
    bucket = 1 << (8 - bits)
    q = _round(x.astype(np.float64) * 128.0) + 128.0
    q = np.floor((q + bucket // 2) / bucket) * bucket
    return np.clip(q, 0, 255).astype(np.uint8)


def _fractional_bits(means: np.ndarray, requested: int | None) -> int:
    limit = (1 << 23) - 1
    biggest = float(np.abs(means).max()) if means.size else 0.0
    if requested is not None:
        if not 1 <= requested <= 24:
            raise ConfigError(f"spz_fractional_bits must lie in 1-24, got {requested}")
        if biggest * 2.0 ** requested > limit:
            raise ConfigError(f"positions up to {biggest:.6g} do not fit SPZ's 24-bit fixed point with "
                              f"{requested} fractional bits (max {limit / 2.0 ** requested:.6g})")
        return requested
    fbits = DEFAULT_FRACTIONAL_BITS
    while fbits > 1 and biggest * 2.0 ** fbits > limit:
        fbits -= 1
    if biggest * 2.0 ** fbits > limit:
        raise ConfigError(f"positions up to {biggest:.6g} are too large for SPZ (24-bit fixed point); "
                          "rescale the scene")
    return fbits


def _encode_sections(g: Gaussians, version: int, fbits: int, sh1_bits: int, sh_rest_bits: int,
                     M: np.ndarray) -> list[bytes]:
    means = g.means.numpy()
    quats = g.quats.numpy()
    sh_rest = None if g.sh_rest is None or g.sh_rest.shape[1] == 0 else g.sh_rest.numpy()
    means, quats, sh_rest = convert_coordinates(means, quats, sh_rest, M)
    n = len(means)

    fixed = _round(means.astype(np.float64) * 2.0 ** fbits).astype(np.int64) & 0xFFFFFF
    positions = np.stack([fixed & 0xFF, (fixed >> 8) & 0xFF, (fixed >> 16) & 0xFF], -1).astype(np.uint8)
    alphas = _to_u8(g.opacities.numpy().astype(np.float64) * 255.0)
    f_dc = (g.colors.numpy().astype(np.float64) - 0.5) / SH_C0
    colors = _to_u8(f_dc * (COLOR_SCALE * 255.0) + 127.5)
    scales = _to_u8((np.log(g.scales.numpy().astype(np.float64)) + 10.0) * 16.0)
    q = quats.astype(np.float64)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    xyzw = q[:, [1, 2, 3, 0]]
    if version >= 3:
        rotations = _encode_smallest_three(xyzw)
    else:
        xyzw = np.where(xyzw[:, 3:] < 0, -xyzw, xyzw)
        rotations = _to_u8(xyzw[:, :3] * 127.5 + 127.5)
    sections = [positions, alphas, colors, scales, rotations]
    if sh_rest is not None:
        sh = np.empty(sh_rest.shape, dtype=np.uint8)
        sh[:, :3] = _quantize_sh(sh_rest[:, :3], sh1_bits)
        sh[:, 3:] = _quantize_sh(sh_rest[:, 3:], sh_rest_bits)
        sections.append(sh)
    else:
        sections.append(np.zeros(0, dtype=np.uint8))
    assert all(len(s) == n or s.size == 0 for s in sections)
    return [np.ascontiguousarray(s).tobytes() for s in sections]


def write_spz(g: Gaussians, path: str | Path, *, version: int = 3, fractional_bits: int | None = None,
              sh1_bits: int = DEFAULT_SH1_BITS, sh_rest_bits: int = DEFAULT_SH_REST_BITS,
              coordinate_system: str = SPZ_COORDINATES) -> None:
    """Write Gaussians (RDF world, validated, on the CPU) as an SPZ file.

    ``version``: 3 (default: gzip container, smallest-three rotations, what most viewers read), 4 (the
    NGSP container with per-attribute zstd streams), or 2 (gzip, 8-bit xyz rotations).
    ``fractional_bits``: fixed-point fraction bits of the positions; ``None`` = 12 (the reference's
    value, ±1.2e-4), lowered only when coordinates reach 2048. ``sh1_bits`` / ``sh_rest_bits``: SH
    quantisation (1-8; 8 keeps the full byte). ``coordinate_system``: how the file stores the data
    (``"RUB"`` per the specification, default; ``"RDF"`` = unconverted, as gsply / ``ply_to_spz``).
    """
    if version not in WRITE_VERSIONS:
        raise ConfigError(f"spz_version must be one of {', '.join(map(str, WRITE_VERSIONS))}, got {version!r}")
    for name, bits in (("spz_sh1_bits", sh1_bits), ("spz_sh_rest_bits", sh_rest_bits)):
        if not (isinstance(bits, int) and 1 <= bits <= 8):
            raise ConfigError(f"{name} must be an integer in 1-8, got {bits!r}")
    target = _check_system(coordinate_system, "spz_coordinate_system")
    if len(g) == 0:
        raise FormatError("cannot write 0 Gaussians to .spz: the reference reader rejects empty files")
    if g.sh_degree > MAX_SH_DEGREE:
        raise FormatError(f"SH degree {g.sh_degree} cannot be written to .spz by lyra (degrees 0-{MAX_SH_DEGREE})")
    zstd = _zstd() if version >= 4 else None
    if version >= 4 and zstd is None:
        raise ConfigError("writing SPZ version 4 needs the 'zstandard' package (pip install zstandard)")
    fbits = _fractional_bits(g.means.numpy(), fractional_bits)
    sections = _encode_sections(g, version, fbits, sh1_bits, sh_rest_bits,
                                coordinate_conversion(LYRA_COORDINATES, target))
    n, degree = len(g), g.sh_degree
    if version < 4:
        raw = LEGACY_HEADER.pack(MAGIC, version, n, degree, fbits, 0, 0) + b"".join(sections)
        Path(path).write_bytes(gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0))
        return
    compressor = zstd.ZstdCompressor(level=ZSTD_LEVEL)
    streams = [(compressor.compress(s), len(s)) for s in sections if s]
    header = NGSP_HEADER.pack(MAGIC, version, n, degree, fbits, 0, len(streams), NGSP_HEADER.size)
    toc = b"".join(TOC_ENTRY.pack(len(c), u) for c, u in streams)
    with open(path, "wb") as f:
        f.write(header)
        f.write(toc)
        for c, _ in streams:
            f.write(c)
