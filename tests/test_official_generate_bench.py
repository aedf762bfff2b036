"""benchmarks/gpu/official_generate.py: the CPU smoke run end to end, the refusal without CUDA, budget logic."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu" / "official_generate.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("official_generate", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cpu_smoke_runs_end_to_end(bench, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert bench.main(["--cpu-smoke", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    r = json.loads(out.read_text())
    assert r["mode"] == "cpu-smoke" and r["frames"] == 9 and r["size"] == [48, 80] and r["trajectories"] == 6
    stages = [row["stage"] for row in r["stages"]]
    assert stages == ["inputs", "depth", "trajectories", "warp_encode", "denoise", "plucker", "student", "gaussians"]
    assert all(row["seconds"] >= 0 and row["peak_gib"] is None for row in r["stages"])
    assert len(r["denoise"]["forward_s"]) == 6 and r["denoise"]["denoise_35x6_s"] > 0
    assert len(r["tokenizer_encode_s"]) == 6 + 12  # warps + two Plücker halves per trajectory
    assert r["gaussians"] == {"before_prune": 6 * 9 * 6 * 10, "after_prune": int(6 * 9 * 6 * 10 * (1 - 0.8))}
    assert r["ok"] and r["over_budget"] == [] and r["run_peak_gib"] is None
    for line in ("denoiser forward 6/6", "stage student", "EXTRAPOLATED (not measured)", "CPU smoke run"):
        assert line in text, line
    assert r["parameters"]["denoiser"] > 0 and r["setup"]["build_s"] >= 0


def test_one_trajectory_two_steps(bench, capsys):
    assert bench.main(["--cpu-smoke", "--trajectories", "1", "--denoise-steps", "2"]) == 0
    text = capsys.readouterr().out
    assert "denoiser forward 2/2 (trajectory 1, step 2)" in text and "forward 3/" not in text
    assert "Gaussians: 540 → 107 after pruning" in text


def test_refuses_without_cuda_and_bad_options(bench, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main([]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "--cpu-smoke" in err and len(err.strip().splitlines()) == 1
    assert bench.main(["--cpu-smoke", "--trajectories", "7"]) == 2


def test_budget_and_extrapolation(bench):
    peaks = {"depth": 0.5, "denoise": 24.5, "student": 14.0, "run": 24.5}
    assert bench.over_budget(peaks, 24.0) == ["denoise"]
    assert bench.over_budget(peaks, 0) == [] and bench.over_budget(None, 24.0) == []
    ex = bench.extrapolate([5.0, 4.0, 4.2], {"depth": 1.0, "denoise": 20.0, "student": 2.0, "total": 30.0}, 3.0)
    assert ex["median_forward_s"] == 4.2 and ex["denoise_35x6_s"] == pytest.approx(4.2 * 210 + 3.0)
    assert ex["run_35x6_s"] == pytest.approx(3.0 + 4.2 * 210 + 3.0)
