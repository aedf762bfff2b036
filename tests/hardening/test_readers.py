"""Readers check declared sizes before allocating and decompress in bounded steps (issue 23, defect 3), and a 4D
folder's index cannot point outside the folder (defect 8). Memory is measured in a subprocess under RLIMIT_AS."""

from __future__ import annotations

import json
import os
import struct
import zlib

import numpy as np
import pytest
import torch
from helpers import make_scene, one_line_error, run_cli, run_limited

from lyra.errors import FormatError, InputFileError
from lyra.gaussians.io import save_gaussians

#: Address-space limit of the reader subprocesses (python + torch + lyra take about 0.7 GiB of it).
MEM_MB = 2048


def _measure(call: str) -> str:
    """Python source: import lyra, then run ``call`` and print 'ERR <message>' or 'OK', then the growth of the
    peak resident memory in MiB."""
    return f"""
import resource, sys
import lyra.cli, lyra.gaussians.io, lyra.inputs, lyra.teacher.depth
from lyra.errors import LyraError
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    {call}
    print("OK")
except LyraError as e:
    print("ERR", str(e).replace(chr(10), " "))
print("GROWTH_MB", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""


def _result(r) -> tuple[str, float]:
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    return lines[-2], float(lines[-1].split()[1])


def _spz_v4_claiming(n: int) -> bytes:
    sizes = [9 * n, n, 3 * n, 3 * n, 4 * n]  # positions, alphas, colours, scales, rotations (SH degree 0)
    toc = 32
    head = struct.pack("<IIIBBBBI12x", 0x5053474E, 4, n, 0, 12, 0, len(sizes), toc)
    return head + b"".join(struct.pack("<QQ", 8, s) for s in sizes) + b"\x28\xb5\x2f\xfd" * 25


def test_spz_header_claiming_four_billion_gaussians(tmp_path):
    p = tmp_path / "huge.spz"
    p.write_bytes(_spz_v4_claiming(2**32 - 1))
    assert len(p.read_bytes()) == 212
    out, growth = _result(run_limited(_measure(f"lyra.gaussians.io.load_gaussians({str(p)!r})"), mem_mb=MEM_MB))
    assert out.startswith("ERR") and "4,294,967,295" in out
    assert growth < 50


def _gzip_bomb(path, n: int, inflated_mb: int) -> None:
    """A version-3 SPZ header for ``n`` Gaussians followed by ``inflated_mb`` MiB of zeros, gzip-compressed."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [c.compress(struct.pack("<IIIBBBB", 0x5053474E, 3, n, 0, 12, 0, 0))]
    block = bytes(1 << 20)
    parts += [c.compress(block) for _ in range(inflated_mb)]
    parts.append(c.flush())
    path.write_bytes(b"".join(parts))


def test_spz_gzip_bomb_is_not_inflated(tmp_path):
    p = tmp_path / "bomb.spz"
    _gzip_bomb(p, 1000, 400)
    assert p.stat().st_size < 1 << 20  # < 1 MiB on disk, 400 MiB inflated
    out, growth = _result(run_limited(_measure(f"lyra.gaussians.io.load_gaussians({str(p)!r})"), mem_mb=MEM_MB))
    assert out.startswith("ERR") and "bomb" in out
    assert growth < 50  # the old reader inflated everything: +400 MiB


def test_spz_count_beyond_what_gzip_can_hold(tmp_path):
    p = tmp_path / "claims.spz"
    _gzip_bomb(p, 10_000_000, 0)  # 200 MB of Gaussians claimed by a 40-byte file
    out, _ = _result(run_limited(_measure(f"lyra.gaussians.io.load_gaussians({str(p)!r})"), mem_mb=MEM_MB))
    assert out.startswith("ERR") and "at most" in out


@pytest.mark.parametrize("fmt", ["binary_little_endian", "ascii"])
def test_ply_header_claiming_four_billion_vertices(tmp_path, fmt):
    props = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3"]
    head = f"ply\nformat {fmt} 1.0\nelement vertex 4294967295\n" + "".join(f"property float {q}\n" for q in props)
    p = tmp_path / "huge.ply"
    p.write_bytes((head + "end_header\n").encode() + b"0 " * 14 + b"\n")
    out, growth = _result(run_limited(_measure(f"lyra.gaussians.io.load_gaussians({str(p)!r})"), mem_mb=MEM_MB))
    assert out.startswith("ERR") and "4,294,967,295" in out
    assert growth < 50


def test_npy_depth_claiming_200000_squared(tmp_path):
    p = tmp_path / "depth.npy"
    with open(p, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (200000, 200000)})
        f.write(bytes(64))
    out, growth = _result(run_limited(_measure(f"lyra.teacher.depth.read_depth_file({str(p)!r})"), mem_mb=MEM_MB))
    assert out.startswith("ERR") and "200000" in out
    assert growth < 50


def _png_claiming(path, width: int, height: int, bit_depth: int = 16, color_type: int = 0) -> None:
    """A PNG whose header claims ``width x height`` with a few bytes of image data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(1024)))
                     + chunk(b"IEND", b""))


def test_depth_png_bomb(tmp_path):
    p = tmp_path / "depth.png"
    for w, h, words in ((12000, 12000, "12000x12000"), (60000, 60000, "PNG")):  # ours; Pillow's bomb limit
        _png_claiming(p, w, h)
        r = run_limited(_measure(f"lyra.teacher.depth.read_depth_file({str(p)!r})"), mem_mb=MEM_MB)
        out, growth = _result(r)
        assert out.startswith("ERR") and words in out and "Warning" not in r.stderr
        assert growth < 50


def test_image_bomb_header(tmp_path):
    p = tmp_path / "image.png"
    for w, h, words in ((20000, 4000, "20000x4000"), (60000, 60000, "too large")):  # ours; Pillow's bomb limit
        _png_claiming(p, w, h, bit_depth=8, color_type=2)
        out, growth = _result(run_limited(_measure(f"lyra.inputs.load_image({str(p)!r})"), mem_mb=MEM_MB))
        assert out.startswith("ERR") and words in out
        assert growth < 50


def test_large_png_is_shrunk_while_decoding(tmp_path):
    """A 6000² PNG (a few hundred KB): the old reader held it as float64 and float32 copies (about 2.5 GB)."""
    from PIL import Image

    p = tmp_path / "big.png"
    Image.new("RGB", (6000, 6000), (200, 40, 90)).save(p)
    out, growth = _result(run_limited(_measure(f"x = lyra.inputs.load_image({str(p)!r}); print(tuple(x.shape))"),
                                      mem_mb=MEM_MB + 1024))
    assert out == "OK"
    assert growth < 1000


def test_ply_log_scale_overflow_is_one_error_without_warnings(tmp_path, recwarn):
    from plyfile import PlyData

    p = tmp_path / "s.ply"
    save_gaussians(make_scene(10), p)
    ply = PlyData.read(str(p), mmap=False)
    ply["vertex"].data["scale_0"][3] = 200.0
    ply["vertex"].data["opacity"][4] = -1e30
    ply.write(str(p))
    code, _, stderr = run_cli(["info", str(p)])
    assert code == 2 and one_line_error(stderr) and "scale" in stderr
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_corrupt_tokenizer_weights_are_one_error(tmp_path):
    from lyra.errors import WeightsError
    from lyra.tokenizer.tokenizer import _read_state_dict

    (tmp_path / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x02corrupt pickle data")
    with pytest.raises(WeightsError, match="cannot read"):
        _read_state_dict(tmp_path)
    (tmp_path / "diffusion_pytorch_model.bin").unlink()
    (tmp_path / "diffusion_pytorch_model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    with pytest.raises(WeightsError):
        _read_state_dict(tmp_path)


# ------------------------------------------------------------------------------------------------ confinement
@pytest.fixture
def scene4d(tmp_path):
    from lyra.geometry.trajectories import orbit
    from lyra.scene import DynamicScene

    cams = orbit(torch.zeros(3), 3.0, 2, 48, 32).reshape(1, 2)
    path = tmp_path / "scene4d"
    DynamicScene(times=torch.tensor([0.0, 1.0]), gaussians=[make_scene(20), make_scene(20, 1)], cameras=cams,
                 names=("orbit",)).save(path)
    return path


def _edit_index(folder, **fields):
    index = json.loads((folder / "index.json").read_text())
    index.update(fields)
    (folder / "index.json").write_text(json.dumps(index))


@pytest.mark.parametrize("field, value", [
    ("cameras", "../../x.json"), ("cameras", "/etc/passwd"), ("files", ["../t000.ply", "t001.ply"]),
    ("files", ["/etc/passwd", "t001.ply"]), ("cameras", 5), ("files", ["sub/t000.ply", "t001.ply"]),
])
def test_index_paths_are_confined(tmp_path, scene4d, field, value):
    from lyra.scene import DynamicScene

    (tmp_path / "x.json").write_text((scene4d / "cameras.json").read_text())  # a valid file outside the folder
    _edit_index(scene4d, **{field: value})
    with pytest.raises(FormatError, match="plain file name"):
        DynamicScene.load(scene4d)
    code, _, stderr = run_cli(["info", str(scene4d)])
    assert code == 2 and one_line_error(stderr)


@pytest.mark.parametrize("name", ["t000.ply", "cameras.json"])
def test_symlinks_out_of_the_folder_are_refused(tmp_path, scene4d, name):
    from lyra.scene import DynamicScene

    outside = tmp_path / f"outside_{name}"
    os.replace(scene4d / name, outside)
    os.symlink(outside, scene4d / name)
    with pytest.raises(FormatError, match="symbolic link"):
        DynamicScene.load(scene4d)


def test_missing_listed_file_is_still_an_input_error(scene4d):
    from lyra.scene import DynamicScene

    (scene4d / "t001.ply").unlink()
    with pytest.raises(InputFileError, match="missing"):
        DynamicScene.load(scene4d)


def test_view_on_all_interfaces_names_the_address_and_warns(monkeypatch, capsys, tmp_path):
    import argparse
    from types import SimpleNamespace

    import lyra.viewer.app as app
    from lyra.cli import view

    p = tmp_path / "s.ply"
    save_gaussians(make_scene(10), p)
    monkeypatch.setattr(app, "serve", lambda *a, **k: SimpleNamespace(url="http://127.0.0.1:8123/", num_splats=10,
                                                                         trajectories={}))
    monkeypatch.setattr(app, "serve_forever", lambda viewer: None)
    args = argparse.Namespace(file=str(p), cameras=None, mesh=None, host="0.0.0.0", port=8123, max_splats=0, up="-y")
    assert view.run(args) == 0
    out, err = capsys.readouterr()
    assert "warning" in err and "0.0.0.0" in err
    assert "127.0.0.1" not in out and ":8123/" in out
    args.host = "127.0.0.1"
    assert view.run(args) == 0
    out, err = capsys.readouterr()
    assert err == "" and "http://127.0.0.1:8123/" in out


def test_shrunk_image_keeps_its_stored_size_for_depth_maps(tmp_path):
    """generate --depth accepts a depth map of the image's stored size when the image was shrunk on loading."""
    from PIL import Image

    from lyra.inputs import load_image, stored_image_size
    from lyra.limits import MAX_IMAGE_DECODE_PIXELS

    p = tmp_path / "wide.png"
    Image.new("RGB", (4000, 2400), (10, 200, 30)).save(p)
    img = load_image(p)
    assert img.shape[1] * img.shape[2] <= MAX_IMAGE_DECODE_PIXELS
    assert abs(img.shape[2] / img.shape[1] - 4000 / 2400) < 0.01
    assert stored_image_size(p) == (2400, 4000)
    assert torch.allclose(img[:, 0, 0], torch.tensor([10, 200, 30]) / 255.0, atol=1e-6)
