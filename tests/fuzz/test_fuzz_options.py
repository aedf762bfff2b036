"""Fuzzed command-line options: each run exits 0 having written its output, or exits 2 with one line on stderr and
nothing written (no output, no temporary)."""

from __future__ import annotations

import argparse
import math

import pytest
from helpers import leftovers, make_scene, one_line_error, run_cli
from hypothesis import given
from hypothesis import strategies as st

from lyra.errors import LyraError
from lyra.gaussians.io import save_gaussians

numbers = (st.floats(allow_nan=True, allow_infinity=True).map(repr) | st.integers(-10**6, 10**6).map(str)
           | st.sampled_from(["", "x", "1e309", "-0", "0x10", "nan", "inf", "1,2"]))
texts = st.text(alphabet="0123456789x,.-+eEnaifXy: ", max_size=14)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    p = tmp_path_factory.mktemp("scene") / "s.ply"
    save_gaussians(make_scene(50), p)
    return p


@given(text=texts)
def test_value_parsers(text):
    from lyra.cli._common import parse_color, parse_size, parse_vector
    from lyra.cli.generate_video import parse_times
    from lyra.cli.teacher import parse_size as parse_work_size

    for parse in (parse_size, parse_color, parse_vector, parse_work_size, parse_times):
        try:
            value = parse(text)
        except (argparse.ArgumentTypeError, LyraError) as e:
            assert "\n" not in str(e)
            continue
        if parse is parse_size:
            assert all(0 < v <= 8192 for v in value)
        if parse in (parse_vector, parse_color):
            assert all(math.isfinite(v) for v in value)


VALID = {"--num-frames": "2", "--size": "16x24", "--fps": "24", "--radius": "3", "--elevation": "15", "--fov": "50",
         "--device": "cpu", "--center": "0,0,3", "--up": "0,-1,0", "--background": "white", "--trajectory": "orbit"}
FUZZ = {
    "--num-frames": st.integers(-2, 3).map(str) | numbers,
    "--size": texts | st.sampled_from(["20000x20000", "9000x16"]),
    "--fps": numbers, "--radius": numbers, "--elevation": numbers, "--fov": numbers, "--center": texts, "--up": texts,
    "--device": st.sampled_from(["bogus", "cuda:7", "cpu:0", "", "mps", "CPU", "cuda"]) | texts,
    "--background": texts, "--trajectory": st.sampled_from(["left", "spiral", "nope", "x.json", ""]) | texts,
}


@given(field=st.sampled_from(sorted(FUZZ)) | st.none(), data=st.data(), ext=st.sampled_from([".mp4", ".gif", ".avi"]))
def test_render_options(tmp_path_factory, scene, field, data, ext):
    """One option fuzzed at a time (``None``: all valid), the others valid."""
    work = tmp_path_factory.mktemp("render")
    out = work / f"r{ext}"
    options = dict(VALID)
    if field is not None:
        options[field] = data.draw(FUZZ[field], label=field)
    argv = ["render", str(scene), "-o", str(out)] + [f"{k}={v}" for k, v in options.items()]
    code, stdout, stderr = run_cli(argv)
    if code == 0:
        assert out.is_file() and out.stat().st_size > 0 and "wrote" in stdout
    else:
        assert code == 2 and one_line_error(stderr), stderr
        assert not out.exists()
    assert leftovers(work) == []


def _join_values(argv: list[str]) -> list[str]:
    """``--opt value`` → ``--opt=value`` so that values starting with '-' stay values."""
    out, i = [], 0
    while i < len(argv):
        if argv[i].startswith("--") and i + 1 < len(argv):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


@given(keep=numbers, version=st.sampled_from(["2", "3", "4", "5", "x", "-1"]),
       ext=st.sampled_from([".ply", ".spz", ".splat", ".txt", ""]))
def test_convert_options(tmp_path_factory, scene, keep, version, ext):
    work = tmp_path_factory.mktemp("convert")
    out = work / f"o{ext}"
    code, _, stderr = run_cli(_join_values(["convert", str(scene), str(out), "--keep", keep, "--spz-version",
                                            version]))
    if code == 0:
        assert out.is_file()
    else:
        assert code == 2 and one_line_error(stderr), stderr
        assert not out.exists()
    assert leftovers(work) == []


@given(bins=numbers)
def test_info_options(scene, bins):
    code, _, stderr = run_cli(_join_values(["info", str(scene), "--bins", bins]))
    assert code == 0 or (code == 2 and one_line_error(stderr)), stderr
