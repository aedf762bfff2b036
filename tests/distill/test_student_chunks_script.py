"""``scripts/student_chunks_gpu.sh`` (the student's resumable GPU chunks) run on the CPU at the ``micro`` size.

Call 1 makes the SDG data and trains a first chunk; call 2 resumes it; a lost machine is simulated by a fresh work
folder whose run resumes from the checkpoint that came back (``RESUME_FROM``). Every call must hand back one
archive with the export, its held-out validation and the log, plus the checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "student_chunks_gpu.sh"
STAGES = {"stages": [
    {"name": "all", "until": 0.5, "views": [1, 6], "target_frames": 2},
    {"name": "prune", "until": 1.0, "views": [1, 6], "target_frames": 2,
     "losses": ["mse", "perceptual", "depth", "opacity"], "prune_ratio": 0.8},
]}


def _call(work: Path, results: Path, stages: Path, call: int, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PYTHON": sys.executable, "CALL": str(call),
            "RUNS": "footprint", "WORLD": "micro", "STAGES": str(stages), "SDG_STEPS": "2", "SDG_PROCS": "1",
            "SDG_MINUTES": "0.1", "VAL_COUNT": "1", "GSPLAT": "0", "CHUNK": "1.2", "RESERVE": "0.5",
            "BUDGET": "0.3", "THREADS": "1", **env}
    return subprocess.run(["bash", str(SCRIPT), str(work), str(results)], cwd=REPO, env=full, capture_output=True,
                          text=True, timeout=900)


def _unpack(results: Path, call: int, into: Path) -> Path:
    with tarfile.open(results / f"results_call{call}.tar.gz") as tar:
        tar.extractall(into, filter="data")
    return into / "footprint"


def test_chunks_train_resume_and_come_back(tmp_path):
    stages = tmp_path / "stages.json"
    stages.write_text(json.dumps(STAGES))
    work, results = tmp_path / "work", tmp_path / "results"
    first = _call(work, results, stages, 1)
    assert first.returncode == 0, first.stdout + first.stderr
    run1 = _unpack(results, 1, tmp_path / "back1")
    assert json.loads((run1 / "export" / "student.json").read_text())["decoder"]["activations"][
        "scale_reference"] == "footprint"
    val1 = json.loads((run1 / "validation_call1.json").read_text())
    assert val1["scenes"] == 1 and 5.0 < val1["psnr"] < 60.0
    assert (results / "footprint_checkpoint.tar").stat().st_size > 1_000_000
    step1 = int((run1 / "train.log").read_text().split("stopped at step ")[1].split()[0])
    assert step1 >= 1

    second = _call(work, results, stages, 2)
    assert second.returncode == 0, second.stdout + second.stderr
    log2 = (_unpack(results, 2, tmp_path / "back2") / "train.log").read_text()
    assert f"resumed {work / 'footprint' / 'checkpoints'}" in log2
    step2 = int(log2.rsplit("stopped at step ", 1)[1].split()[0])
    assert step2 > step1

    # the machine is lost: a new work folder, the SDG made again, the run continues from the checkpoint that came back
    back = tmp_path / "came_back"
    back.mkdir()
    (results / "footprint_checkpoint.tar").rename(back / "footprint_checkpoint.tar")
    third = _call(tmp_path / "work2", tmp_path / "results2", stages, 1, RESUME_FROM=str(back))
    assert third.returncode == 0, third.stdout + third.stderr
    log3 = (_unpack(tmp_path / "results2", 1, tmp_path / "back3") / "train.log").read_text()
    assert f"at step {step2}" in log3 and "resumed" in log3
