"""scripts/teacher_gpu.sh at the micro size on the CPU: a fresh clean-prediction chunk generating 24 of 96 channels,
then a few-step distillation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SMALL = {"CPU": "1", "WORLD_PRESET": "micro", "BATCH": "1", "POOL": "1", "TEST_WORLDS": "1", "EVAL_STEPS": "1",
         "MAXMIN": "4", "RESERVE": "1", "LOG_EVERY": "1"}


def _script(tmp_path: Path, name: str, **env: str) -> tuple[subprocess.CompletedProcess, Path]:
    results = tmp_path / f"{name}_results"
    run_env = {**os.environ, **SMALL, **env, "PYTHON": sys.executable,
               "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run(["bash", str(REPO / "scripts" / "teacher_gpu.sh"), str(tmp_path / f"{name}_work"),
                          str(results)], env=run_env, capture_output=True, text=True, timeout=600)
    return res, results


@pytest.mark.slow
def test_a_fresh_chunk_then_a_distillation(tmp_path):
    res, results = _script(tmp_path, "fresh", STEPS="2", HEADS="2", LAYERS="1", PREDICTION="clean", ANCHOR="warp",
                           GENERATED="24")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    export = results / "export"
    meta = json.loads((export / "teacher.json").read_text())
    assert meta["tokenizer"] == "tiny_block" and meta["prediction"] == "clean" and meta["anchor"] == "warp"
    rec = json.loads((export / "training_record.json").read_text())
    assert rec["architecture"]["num_attention_heads"] == 2 and rec["architecture"]["num_layers"] == 1
    # 24 of tiny_block's 96 channels generated: noisy 24 + warp 96 + 2 in, 24 out
    assert (rec["architecture"]["in_channels"], rec["architecture"]["out_channels"]) == (24 + 96 + 2, 24)
    assert rec["steps"] == 2 and "test" in rec and (results / "metrics.csv").is_file()
    # the few-step student of that export: its tokenizer, its architecture, and the step count it records
    res, dist = _script(tmp_path, "distil", STEPS="1", DISTILL=str(export), DISTILL_STEPS="2",
                        DISTILL_TEACHER_STEPS="4")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    meta = json.loads((dist / "export" / "teacher.json").read_text())
    assert meta["steps"] == 2 and meta["tokenizer"] == "tiny_block" and meta["prediction"] == "clean"
    assert json.loads((dist / "export" / "config.json").read_text())["out_channels"] == 24
    assert "teacher_gpu.sh: exit 0" in (dist / "train.log").read_text()
    # a next chunk from that export (INIT, no TOKENIZER): it trains on the latents its start was made for
    res, chunk = _script(tmp_path, "chunk2", STEPS="1", INIT=str(export))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    meta = json.loads((chunk / "export" / "teacher.json").read_text())
    assert meta["tokenizer"] == "tiny_block" and meta["prediction"] == "clean" and meta["anchor"] == "warp"
    # and from the shipped 16-channel teacher (the dynamic fine-tune's start): the Cosmos-style tiny tokenizer
    res, shipped = _script(tmp_path, "from_shipped", STEPS="1", INIT=str(REPO / "src/lyra/weights/teacher_tiny"))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert json.loads((shipped / "export" / "teacher.json").read_text())["tokenizer"] == "tiny"
