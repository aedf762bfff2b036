"""Mutated and hand-crafted malformed files for every reader: a LyraError with a one-line message or a valid
result, never another exception, never a file written beside the input."""

from __future__ import annotations

import gzip
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_scene, one_line_error, run_cli
from hypothesis import given
from hypothesis import strategies as st

from lyra.errors import LyraError
from lyra.gaussians.io import load_gaussians, save_gaussians

_CACHE: dict[str, bytes] = {}


def _valid(kind: str, tmp: Path) -> bytes:
    """The bytes of a small valid file of ``kind`` (made once)."""
    if kind not in _CACHE:
        g = make_scene(12)
        name = {"ply": "s.ply", "ply_ascii": "a.ply", "splat": "s.splat", "spz2": "s2.spz", "spz3": "s3.spz",
                "spz4": "s4.spz"}[kind]
        opts = {"ply_ascii": {"ply_ascii": True}, "spz2": {"spz_version": 2}, "spz4": {"spz_version": 4}}.get(kind, {})
        save_gaussians(g, tmp / name, **opts)
        _CACHE[kind] = (tmp / name).read_bytes()
    return _CACHE[kind]


EXT = {"ply": ".ply", "ply_ascii": ".ply", "splat": ".splat", "spz2": ".spz", "spz3": ".spz", "spz4": ".spz"}


def _mutate(data: bytes, cut: int, flips: list[tuple[int, int]], insert: bytes) -> bytes:
    b = bytearray(data[: max(1, cut)])
    for pos, val in flips:
        if b:
            b[pos % len(b)] = val
    mid = len(b) // 2
    return bytes(b[:mid]) + insert + bytes(b[mid:])


def _check_read(path: Path, reader) -> None:
    before = sorted(p.name for p in path.parent.iterdir())
    try:
        reader(path)
    except LyraError as e:
        msg = str(e)
        assert msg and "\n" not in msg.strip(), msg
    assert sorted(p.name for p in path.parent.iterdir()) == before  # nothing written beside it


mutation = st.tuples(st.integers(1, 1 << 16), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)),
                                                        max_size=8), st.binary(max_size=16))


@pytest.mark.parametrize("kind", list(EXT))
@given(m=mutation)
def test_splat_files(tmp_path_factory, kind, m):
    base = tmp_path_factory.mktemp("valid")
    data = _valid(kind, base)
    work = tmp_path_factory.mktemp("fuzz")
    p = work / f"x{EXT[kind]}"
    p.write_bytes(_mutate(data, *m))
    _check_read(p, load_gaussians)


@given(n=st.integers(0, 2**32 - 1), version=st.sampled_from([2, 3, 4]), degree=st.integers(0, 255),
       fbits=st.integers(0, 255), flags=st.integers(0, 255), tail=st.binary(max_size=256))
def test_spz_headers(tmp_path_factory, n, version, degree, fbits, flags, tail):
    p = tmp_path_factory.mktemp("spz") / "h.spz"
    if version == 4:
        head = struct.pack("<IIIBBBBI12x", 0x5053474E, 4, n, degree, fbits, flags, 5, 32)
        p.write_bytes(head + tail)
    else:
        raw = struct.pack("<IIIBBBB", 0x5053474E, version, n, degree, fbits, flags, 0) + tail
        p.write_bytes(gzip.compress(raw, 6))
    _check_read(p, load_gaussians)


@given(count=st.integers(0, 2**40), fmt=st.sampled_from(["binary_little_endian", "binary_big_endian", "ascii"]),
       props=st.lists(st.sampled_from(["x", "y", "z", "opacity", "scale_0", "rot_0", "f_dc_0", "f_rest_0", "junk"]),
                      max_size=20),
       ptype=st.sampled_from(["float", "double", "uchar", "int", "list uchar float"]), body=st.binary(max_size=200))
def test_ply_headers(tmp_path_factory, count, fmt, props, ptype, body):
    head = f"ply\nformat {fmt} 1.0\nelement vertex {count}\n" + "".join(f"property {ptype} {q}\n" for q in props)
    p = tmp_path_factory.mktemp("ply") / "h.ply"
    p.write_bytes((head + "end_header\n").encode() + body)
    _check_read(p, load_gaussians)


@given(shape=st.lists(st.integers(0, 10**6), min_size=0, max_size=4), descr=st.sampled_from(["<f4", "<f8", "<i2",
                                                                                               "|O", "<c8", "|b1"]),
       body=st.binary(max_size=512))
def test_npy_depth(tmp_path_factory, shape, descr, body):
    from lyra.teacher.depth import read_depth_file

    p = tmp_path_factory.mktemp("npy") / "d.npy"
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    p.write_bytes(buf.getvalue() + body)
    _check_read(p, read_depth_file)


def _png(width: int, height: int, depth: int, ctype: int, data: bytes) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b""))


@given(w=st.integers(0, 70000), h=st.integers(0, 70000), depth=st.sampled_from([1, 8, 16]),
       ctype=st.sampled_from([0, 2, 4, 6]), data=st.binary(max_size=256))
def test_png_images_and_depth(tmp_path_factory, w, h, depth, ctype, data):
    from lyra.inputs import load_image
    from lyra.teacher.depth import read_depth_file

    folder = tmp_path_factory.mktemp("png")
    p = folder / "i.png"
    p.write_bytes(_png(w, h, depth, ctype, data))
    _check_read(p, load_image)
    _check_read(p, read_depth_file)


json_values = st.recursive(st.none() | st.booleans() | st.floats() | st.integers(-10**12, 10**12) | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=8), c, max_size=5),
                           max_leaves=30)


@given(width=json_values | st.integers(-5, 20000), height=json_values | st.integers(-5, 20000),
       c2w=st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True) | json_values, min_size=0, max_size=5),
                    max_size=5),
       K=st.none() | st.lists(st.lists(st.floats(-1e4, 1e4), min_size=3, max_size=3), min_size=3, max_size=3),
       fov=json_values, nerf=st.booleans())
def test_camera_paths(tmp_path_factory, width, height, c2w, K, fov, nerf):
    from lyra.geometry.trajectories import load_camera_path

    frame: dict = {"transform_matrix": c2w, "w": width, "h": height, "fl_x": fov} if nerf else {"c2w": c2w}
    if not nerf:
        frame.update({"K": K} if K is not None else {"fov_y_deg": fov})
    doc = {"frames": [frame]} if nerf else {"width": width, "height": height, "frames": [frame]}
    p = tmp_path_factory.mktemp("cams") / "p.json"
    p.write_text(json.dumps(doc, allow_nan=True))
    _check_read(p, load_camera_path)


@given(doc=st.dictionaries(st.sampled_from(["format", "version", "times", "files", "cameras", "trajectories",
                                            "camera_times", "gaussians", "metadata"]), json_values, max_size=9),
       valid_base=st.booleans())
def test_dynamic_scene_index(tmp_path_factory, doc, valid_base):
    from lyra.scene import DynamicScene

    folder = tmp_path_factory.mktemp("s4d") / "scene"
    DynamicScene(times=torch.tensor([0.0, 1.0]), gaussians=[make_scene(5), make_scene(5, 1)]).save(folder)
    index = json.loads((folder / "index.json").read_text()) if valid_base else {}
    index.update(doc)
    (folder / "index.json").write_text(json.dumps(index, allow_nan=True))
    _check_read(folder / "index.json", lambda p: DynamicScene.load(p.parent))


@pytest.mark.parametrize("kind", ["ply", "spz3", "splat"])
@given(m=mutation)
def test_info_and_convert_cli(tmp_path_factory, kind, m):
    """The CLI over a damaged file: exit 0, or one line on stderr, a non-zero exit and no output or temporary."""
    from helpers import leftovers

    data = _valid(kind, tmp_path_factory.mktemp("valid"))
    work = tmp_path_factory.mktemp("cli")
    src = work / f"in{EXT[kind]}"
    src.write_bytes(_mutate(data, *m))
    code, _, err = run_cli(["info", str(src)])
    assert code == 0 or (code == 2 and one_line_error(err)), err
    out = work / "out.spz"
    code, _, err = run_cli(["convert", str(src), str(out)])
    if code == 0:
        load_gaussians(out)
    else:
        assert code == 2 and one_line_error(err), err
        assert not out.exists()
    assert leftovers(work) == []
