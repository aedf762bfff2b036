"""Bad input and unwritable output: one-line LyraErrors naming the problem, no file or temp file left."""

from __future__ import annotations

import dataclasses
import gzip
import struct
import zlib

import pytest

from lyra.errors import ConfigError, FormatError, InputFileError, LyraError, OutputPathError
from lyra.gaussians import Gaussians
from lyra.gaussians.io import FORMATS, load_gaussians, save_gaussians, supported_extensions

EXTS = [".ply", ".splat", ".spz", ".glb", ".sog"]
PNG = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + bytes(13) + b"\x00" * 40


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and message
    assert isinstance(err.value, LyraError)
    return message


def test_formats_table():
    assert supported_extensions() == EXTS
    assert {f.extension for f in FORMATS.values()} == set(EXTS)
    assert not FORMATS[".splat"].stores_sh and FORMATS[".spz"].stores_sh


@pytest.mark.parametrize("ext", EXTS)
def test_missing_directory_empty(tmp_path, ext):
    with pytest.raises(InputFileError, match="no such file") as e:
        load_gaussians(tmp_path / f"nope{ext}")
    _one_line(e)
    (tmp_path / f"dir{ext}").mkdir()
    with pytest.raises(InputFileError, match="is a directory"):
        load_gaussians(tmp_path / f"dir{ext}")
    (tmp_path / f"empty{ext}").write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        load_gaussians(tmp_path / f"empty{ext}")


@pytest.mark.parametrize("ext,options", [(".ply", {}), (".splat", {}), (".spz", {}), (".spz", {"spz_version": 4}),
                                         (".spz", {"spz_version": 2})])
def test_truncated_files(tmp_path, make_gaussians, ext, options):
    path = save_gaussians(make_gaussians(300, sh_degree=0 if ext == ".splat" else 1), tmp_path / f"s{ext}",
                          **options)
    data = path.read_bytes()
    # (.splat has no header: a cut at a record boundary is a valid, shorter file and cannot be detected)
    for cut in (len(data) // 2 + 5, len(data) - 3):
        path.write_bytes(data[:cut])
        with pytest.raises(FormatError) as e:
            load_gaussians(path)
        message = _one_line(e)
        assert str(path) in message
        assert "truncated" in message or "multiple of 32" in message


@pytest.mark.parametrize("ext,expected", [(".ply", "not a PLY file"), (".splat", "not a multiple of 32"),
                                          (".spz", "not an SPZ file")])
def test_wrong_format(tmp_path, ext, expected):
    path = tmp_path / f"image{ext}"
    path.write_bytes(PNG)
    with pytest.raises(FormatError, match=expected) as e:
        load_gaussians(path)
    _one_line(e)


def test_other_formats_named_as_each_other(tmp_path, make_gaussians):
    g = make_gaussians(32)
    save_gaussians(g, tmp_path / "a.spz")
    (tmp_path / "a.ply").write_bytes((tmp_path / "a.spz").read_bytes())
    with pytest.raises(FormatError, match="not a PLY file"):
        load_gaussians(tmp_path / "a.ply")
    save_gaussians(g, tmp_path / "b.ply")
    (tmp_path / "b.spz").write_bytes((tmp_path / "b.ply").read_bytes())
    with pytest.raises(FormatError, match="not an SPZ file"):
        load_gaussians(tmp_path / "b.spz")
    # corrupt gzip payload (flipped bytes in the deflate stream)
    data = bytearray((tmp_path / "a.spz").read_bytes())
    data[20:40] = bytes(20)
    (tmp_path / "c.spz").write_bytes(bytes(data))
    with pytest.raises(FormatError) as e:
        load_gaussians(tmp_path / "c.spz")
    _one_line(e)


def test_nan_in_ply(tmp_path, make_gaussians):
    path = save_gaussians(make_gaussians(10), tmp_path / "n.ply")
    data = bytearray(path.read_bytes())
    start = data.index(b"end_header\n") + len(b"end_header\n")
    struct.pack_into("<f", data, start + 4 * (17 * 6 + 9), float("nan"))  # vertex 6, property 9 = opacity
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"NaN/inf\) in properties opacity of 1 vertex\(es\), first at vertex 6"):
        load_gaussians(path)


@pytest.mark.parametrize("ext", EXTS)
def test_nan_gaussians_are_not_written(tmp_path, make_gaussians, ext):
    g = make_gaussians(10)
    g.scales[4, 2] = float("nan")
    with pytest.raises(FormatError, match="scales has non-finite values") as e:
        save_gaussians(g, tmp_path / f"out{ext}")
    _one_line(e)
    assert list(tmp_path.iterdir()) == []


def test_unknown_extension(tmp_path, make_gaussians):
    (tmp_path / "scene.obj").write_bytes(b"v 0 0 0\n")
    with pytest.raises(InputFileError, match=r"extension '\.obj'.*\.ply, \.splat, \.spz") as e:
        load_gaussians(tmp_path / "scene.obj")
    _one_line(e)
    with pytest.raises(OutputPathError, match=r"\.ply, \.splat, \.spz"):
        save_gaussians(make_gaussians(3), tmp_path / "scene.fbx")  # .glb was the example until lyra wrote it
    with pytest.raises(OutputPathError, match="no extension"):
        save_gaussians(make_gaussians(3), tmp_path / "scene")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.obj"]


@pytest.mark.parametrize("ext", EXTS)
def test_unwritable_output(tmp_path, make_gaussians, ext):
    g = make_gaussians(5)
    with pytest.raises(OutputPathError, match="does not exist") as e:
        save_gaussians(g, tmp_path / "missing" / f"out{ext}")
    _one_line(e)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(OutputPathError, match="is a file, not a folder") as e:
        save_gaussians(g, tmp_path / "file.txt" / f"out{ext}")
    _one_line(e)
    (tmp_path / f"dir{ext}").mkdir()
    with pytest.raises(OutputPathError, match="is a directory"):
        save_gaussians(g, tmp_path / f"dir{ext}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"dir{ext}", "file.txt"]


@pytest.mark.parametrize("ext", EXTS)
def test_writer_failing_midway_leaves_nothing(tmp_path, make_gaussians, monkeypatch, ext):
    """A writer that dies after writing part of the file leaves neither the file nor its temp file."""
    def half_then_fail(g, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(FORMATS, ext, dataclasses.replace(FORMATS[ext], write=half_then_fail))
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_gaussians(make_gaussians(5), tmp_path / f"out{ext}")
    assert list(tmp_path.iterdir()) == []
    # an existing file is kept as it was
    (tmp_path / f"keep{ext}").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        save_gaussians(make_gaussians(5), tmp_path / f"keep{ext}")
    assert [p.name for p in tmp_path.iterdir()] == [f"keep{ext}"]
    assert (tmp_path / f"keep{ext}").read_bytes() == b"old"


def test_overwrite_and_options(tmp_path, make_gaussians):
    g = make_gaussians(8)
    path = save_gaussians(g, tmp_path / "o.ply")
    save_gaussians(make_gaussians(3, seed=9), path)
    assert len(load_gaussians(path)) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["o.ply"]
    with pytest.raises(ConfigError, match="'spz_version' does not apply when writing .ply"):
        save_gaussians(g, path, spz_version=4)
    with pytest.raises(ConfigError, match="when reading .ply files \\(accepted: none\\)"):
        load_gaussians(tmp_path / "o.ply", spz_coordinate_system="RDF")


def test_empty_sets(tmp_path):
    empty = Gaussians.empty()
    assert len(load_gaussians(save_gaussians(empty, tmp_path / "e.ply"))) == 0
    for ext in (".splat", ".spz"):
        with pytest.raises(FormatError, match="cannot write 0 Gaussians"):
            save_gaussians(empty, tmp_path / f"e{ext}")
    assert [p.name for p in tmp_path.iterdir()] == ["e.ply"]


def test_spz_header_lies_about_count(tmp_path, make_gaussians):
    path = save_gaussians(make_gaussians(10), tmp_path / "c.spz")
    raw = bytearray(zlib.decompress(path.read_bytes(), wbits=31))
    struct.pack_into("<I", raw, 8, 1000)
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(FormatError, match="truncated .*1000 Gaussians need"):
        load_gaussians(path)
