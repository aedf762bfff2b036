"""``scripts/tokenizer_gpu.sh``, the device's training chunk, run on the CPU at the ``micro`` world size.

The script must export (weights + config + record with held-out metrics) and hand back its log and curve, and
it must fail loudly, not exit 0, when the trainer exits 0 without exporting (what a GPU chunk did when
``python -m lyra.train.recipes.tokenizer`` was a no-op).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "tokenizer_gpu.sh"
#: The micro world size and a budget of a few steps (the knobs the script reads).
MICRO = {"BUDGET": "0.2", "MAXMIN": "1.5", "RESERVE": "0.5", "BATCH": "2", "WORKERS": "1", "WORLD_PRESET": "micro",
         "FRAMES": "9", "SIZE": "48x88", "POOL": "2", "TEST_WORLDS": "1", "STATS_BATCHES": "1", "CPU": "1"}


def _script(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    results = tmp_path / "results"
    full = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PYTHON": sys.executable, **MICRO, **env}
    res = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "work"), str(results)], cwd=REPO, env=full,
                         capture_output=True, text=True, timeout=600)
    return res, results


def test_script_fails_when_the_trainer_exports_nothing(tmp_path):
    # a "trainer" that exits 0 at once (python -c pass ignores the rest of the command line)
    res, results = _script(tmp_path, PYTHON=f"{sys.executable} -c pass")
    assert res.returncode == 3, res.stdout
    log = (results / "train.log").read_text()
    assert "exited 0 but" in log and "diffusion_pytorch_model.safetensors is missing" in log
    assert "no metrics.csv" in log


def test_script_keeps_the_log_when_the_trainer_fails(tmp_path):
    res, results = _script(tmp_path, CONFIG="no_such_preset")
    assert res.returncode == 2, res.stdout
    log = (results / "train.log").read_text()
    assert "no_such_preset" in log and "tokenizer_gpu.sh: exit 2" in log
    assert not (results / "export").exists()


@pytest.mark.slow
def test_script_trains_a_chunk_from_an_export_and_exports(tmp_path):
    # a fixed step count, not the time budget: the test must not depend on how loaded the machine is
    res, results = _script(tmp_path, INIT=str(REPO / "src/lyra/weights/tokenizer_tiny"), SEED="3", STEPS="50",
                           MAXMIN="6")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    export = results / "export"
    assert {p.name for p in export.iterdir()} == {"config.json", "diffusion_pytorch_model.safetensors",
                                                 "training_record.json"}
    rec = json.loads((export / "training_record.json").read_text())
    assert rec["init_from"].endswith("tokenizer_tiny") and rec["data"]["seed"] == 3
    assert rec["model_config"]["decode_block_out_channels"] == [48, 96, 128, 128]
    assert rec["test"]["videos"] == 6 and 5.0 < rec["test"]["psnr"] < 60.0
    assert rec["weights"]["bytes"] < 10_000_000
    rows = (results / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and int(rows[-1].split(",")[0]) == rec["steps"] == 50
    assert "exported" in (results / "train.log").read_text()
