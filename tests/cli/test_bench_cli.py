"""``lyra bench``: --list shows every script, name errors are one line, a micro render benchmark runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import lyra.cli.bench as bench
from lyra.cli import main

ROOT = bench.repository_root()


def test_repository_root_is_this_checkout():
    assert (ROOT / "benchmarks" / "render_cpu.py").is_file()
    assert ROOT == Path(__file__).resolve().parents[2]


def test_list_shows_every_script_once_per_name(capsys):
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    scripts = sorted(ROOT.glob("benchmarks/*.py")) + sorted(ROOT.glob("benchmarks/gpu/*.py"))
    assert scripts
    for path in scripts:
        rel = str(path.relative_to(ROOT))
        assert rel in out, rel
    lines = out.splitlines()
    cpu = [ln.split() for ln in lines[1:lines.index("GPU (lyra bench NAME --gpu):")]]
    assert [(w[0], w[1]) for w in cpu] == [(p.stem.removesuffix("_cpu"), f"benchmarks/{p.name}")
                                           for p in sorted(ROOT.glob("benchmarks/*_cpu.py"))]
    # the summary is the script's docstring opening (without reST markup)
    render_line = next(ln for ln in lines if "benchmarks/render_cpu.py" in ln)
    assert render_line.split("benchmarks/render_cpu.py", 1)[1].strip() == (
        "CPU benchmark of the torch reference rasterizer: 90,000 Gaussians at 176×320 (target ≤ 2 s/frame).")
    gpu_render = next(ln for ln in lines if "benchmarks/gpu/render_gsplat.py" in ln)
    assert gpu_render.split()[0] == "render"


@pytest.mark.parametrize("argv, match", [
    (["bench", "nope"], "unknown benchmark 'nope'; choose one of dynamic_input_view, generate, mesh, render"),
    (["bench", "nope", "--gpu"], "unknown GPU benchmark 'nope'"),
    (["bench", "sdg"], "'sdg' is a GPU benchmark only: add --gpu"),
    (["bench", "warp", "--gpu"], "'warp' is a CPU benchmark only"),
    (["bench"], "name a benchmark"),
    (["bench", "world", "--write"], "has no JSON output"),
])
def test_name_errors_are_one_line(capsys, argv, match):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and match in err, err


def test_missing_benchmarks_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "_candidate_roots", lambda: [tmp_path])
    code = main(["bench", "--list"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "benchmarks/ folder" in err and "pip install -e" in err


def test_command_line_passes_arguments_through():
    render = bench.find_benchmark("render", False, ROOT)
    argv = bench.command_line(render, ["--n", "5"], False, ROOT)
    assert argv == [sys.executable, str(ROOT / "benchmarks" / "render_cpu.py"), "--n", "5"]
    assert bench.command_line(render, [], True, ROOT)[2:] == ["--json", str(ROOT / "docs/bench/render_cpu.json")]
    gen = bench.find_benchmark("generate", False, ROOT)
    assert bench.command_line(gen, ["--steps", "2"], True, ROOT)[2:] == ["--steps", "2", "--write"]
    assert bench.find_benchmark("generate", True, ROOT).path.name == "generate_gpu.py"
    assert bench.find_benchmark("teacher", True, ROOT).path.name == "sdg_throughput.py"


def test_runs_a_micro_render_benchmark(tmp_path, capfd):
    out = tmp_path / "render.json"
    code = main(["bench", "render", "--n", "40", "--width", "32", "--height", "16", "--repeats", "1", "--scenes",
                 "random", "--threads", "1", "--json", str(out)])
    captured = capfd.readouterr()
    assert code == 0, captured.err
    assert "lyra bench:" in captured.err and "benchmarks/render_cpu.py --n 40" in captured.err
    assert "random: 40 Gaussians 32x16" in captured.out
    res = json.loads(out.read_text())
    assert (res["benchmark"], res["width"], res["height"], res["results"]["random"]["n"]) == ("render_cpu", 32, 16, 40)
    # the script's own failure comes back as the exit status
    assert main(["bench", "render", "--scenes", "bogus", "--n", "4", "--repeats", "1"]) != 0
