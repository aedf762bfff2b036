"""Resume never runs code planted in a checkpoint, and survives a damaged newest checkpoint (issue 23, 1 and 4)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from lyra.train import CheckpointError, list_checkpoints, verify_checkpoint
from lyra.train.checkpoint import MANIFEST_NAME, write_manifest
from tests.train.test_resume import _run, _same


class _Payload:
    """Unpickling this runs ``touch MARKER`` (what an attacker would plant)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _two_checkpoints(tmp_path):
    out = tmp_path / "run"
    _run(out, 12, until=8, checkpoint_every=4)
    ckpts = [p for _, p in list_checkpoints(out / "checkpoints")]
    assert [p.name for p in ckpts] == ["step-00000004", "step-00000008"]
    return out, ckpts


@pytest.mark.parametrize("target", ["rng_state_0.pt", "custom_checkpoint_0.pkl", "optimizer.bin"])
@pytest.mark.parametrize("rewrite_manifest", [False, True])
def test_planted_pickle_payload_never_runs(tmp_path, capsys, target, rewrite_manifest):
    out, (older, newest) = _two_checkpoints(tmp_path)
    marker = tmp_path / "MARKER"
    torch.save({"python": _Payload(str(marker)), "shadow": _Payload(str(marker))}, newest / target)
    if target == "custom_checkpoint_0.pkl":  # what accelerate wrote for the EMA before: make it look like that
        (newest / "ema.safetensors").unlink()
    if rewrite_manifest:  # an attacker who can write the folder can also rewrite the manifest
        write_manifest(newest)
    trainer, result = _run(out, 12, checkpoint_every=4)
    assert not marker.exists()
    assert result.step == 12
    assert "skipping damaged checkpoint" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["model.safetensors", "optimizer.bin", "rng_state_0.pt", "ema.safetensors",
                                    "trainer_state.json", "manifest.json"])
@pytest.mark.parametrize("rewrite_manifest", [False, True])
def test_damaged_newest_checkpoint_falls_back(tmp_path, capsys, damage, rewrite_manifest):
    straight, _ = _run(tmp_path / "straight", 12, checkpoint_every=4)
    out, (older, newest) = _two_checkpoints(tmp_path)
    f = newest / damage
    if damage == "trainer_state.json":
        f.write_text('{"step": 8, "data": ')  # malformed JSON
    else:
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])  # truncated
    if rewrite_manifest and damage != "manifest.json":
        write_manifest(newest)  # the manifest matches: the damage is found while loading
    resumed, result = _run(out, 12, checkpoint_every=4)
    text = capsys.readouterr().out
    assert "skipping damaged checkpoint" in text and "step-00000008" in text
    assert f"resumed {older}" in text
    assert result.step == 12
    # Resuming from step 4 and training on reproduces the straight run exactly.
    assert _same(straight.unwrapped_model.state_dict(), resumed.unwrapped_model.state_dict())
    assert _same(straight.ema.shadow, resumed.ema.shadow)


def test_no_intact_checkpoint_is_one_error(tmp_path):
    out, ckpts = _two_checkpoints(tmp_path)
    for c in ckpts:
        (c / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="no intact checkpoint"):
        _run(out, 12, checkpoint_every=4)


def test_manifest_written_last_and_complete(tmp_path):
    _, (older, newest) = _two_checkpoints(tmp_path)
    manifest = json.loads((newest / MANIFEST_NAME).read_text())
    names = {p.name for p in newest.iterdir() if p.name != MANIFEST_NAME}
    assert set(manifest["files"]) == names
    assert "ema.safetensors" in names and "custom_checkpoint_0.pkl" not in names
    verify_checkpoint(newest)
    # Every RNG state loads with weights_only=True.
    torch.load(newest / "rng_state_0.pt", weights_only=True)
    # A folder without its manifest (killed before the manifest was written) is not a checkpoint.
    (newest / MANIFEST_NAME).unlink()
    (newest / "trainer_state.json").unlink()
    assert [p for _, p in list_checkpoints(newest.parent)] == [older]
