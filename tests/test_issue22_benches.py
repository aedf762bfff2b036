"""The GPU benchmark scripts of issue 22 run end to end in their CPU smoke mode (so a GPU call is not wasted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu" / script), *args], env=env,
                          capture_output=True, text=True, timeout=600)


def test_decoder_auto_cpu_smoke(tmp_path):
    out = tmp_path / "d.json"
    p = _run("decoder_auto.py", "--cpu-smoke", "--repeats", "1", "--json", str(out))
    assert p.returncode == 0, p.stderr
    r = json.loads(out.read_text())
    assert r["auto"]["paths"] == {"ssd": "torch", "attention": "sdpa"}  # the CPU: the oracle path
    assert r["auto"]["rel_l2_vs_fp32"] == 0.0 and r["torch"]["rel_l2_vs_fp32"] == 0.0  # fp32 on both sides
    assert r["oracle"]["paths"]["ssd"] == "torch"


def test_denoiser_8bit_cpu_smoke(tmp_path):
    out = tmp_path / "q.json"
    p = _run("denoiser_8bit.py", "--cpu-smoke", "--repeats", "1", "--int8", "--json", str(out))
    assert p.returncode == 0, p.stderr
    r = json.loads(out.read_text())
    for mode in ("fp8", "int8"):
        assert r[mode]["layers"] > 0
        assert 0 < r[mode]["rel_l2_vs_bf16"] < 0.05
    assert r["int8"]["rel_l2_vs_bf16"] < r["fp8"]["rel_l2_vs_bf16"]


def test_world_gpu_cpu_smoke(tmp_path):
    """Item 6's benchmark: batch sizes, the chunk-size sweep, the profile and the CPU check, all in its JSON."""
    out = tmp_path / "w.json"
    p = _run("world_gpu.py", "--cpu-smoke", "--preset", "micro", "--batch", "1,2", "--iters", "1", "--workers", "1",
             "--max-pixels", "60000,250000", "--profile", "--check", "--json", str(out))
    assert p.returncode == 0, p.stderr
    r = json.loads(out.read_text())
    assert set(r["render"]) == {"eager_batch1", "eager_batch2", "eager_batch2_max_pixels250000"}
    assert r["max_pixels"] == 60000 and all(v["median_per_s"] > 0 for v in r["render"].values())
    assert r["profile"]["batch"] == 1 and r["profile"]["top_kernels"]
    assert {"trace_primary", "trace_antialias", "textures", "shadow_maps"} <= set(r["profile"]["stages"])
    assert r["cpu_vs_gpu"]["max_abs_rgb"] == 0.0  # the CPU against itself, in other chunk sizes


def test_fast_paths_cpu_smoke(tmp_path):
    """Items 2 and 3's benchmark: every part writes its figures (Triton kernels that cannot run here are errors in
    the JSON, not a crash); the FP8 linear layers change the denoiser's output by a few per cent at most."""
    out = tmp_path / "f.json"
    p = _run("fast_paths.py", "--cpu-smoke", "--repeats", "1", "--part", "attention,denoiser,decoder",
             "--denoiser-variants", "fp8lin_sdpa", "--json", str(out))
    assert p.returncode == 0, p.stderr
    r = json.loads(out.read_text())
    for shape in ("decoder", "denoiser"):
        fp8 = r["attention"][shape]["triton_fp8"]
        assert "error" in fp8 or 0.01 < fp8["rel_l2_vs_fp32"] < 0.1
    den = r["denoiser"]
    assert den["bf16_sdpa"]["rel_l2_vs_bf16_sdpa"] == 0.0 and 0 < den["fp8lin_sdpa"]["rel_l2_vs_bf16_sdpa"] < 0.05
    assert set(r["decoder"]) >= {"cudnn", "triton_bf16", "triton_fp8"}
    assert all(r["decoder"][k]["rel_l2_vs_fp32"] == 0.0 for k in ("cudnn", "triton_bf16", "triton_fp8"))
