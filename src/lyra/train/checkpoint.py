"""Atomic training checkpoints with everything an exact resume needs.

A checkpoint is a folder ``<root>/step-00001000/`` holding

* what ``accelerate``'s ``save_state`` writes: model (``model.safetensors``, or FSDP/DeepSpeed shards),
  optimiser, LR scheduler, gradient scaler, objects registered for checkpointing (e.g. the EMA);
* ``rng_state_<rank>.pt``: the Python, NumPy, torch CPU and CUDA generator states of every process;
* ``trainer_state.json``: step, data position, elapsed time, the training config, the last metrics.

The folder is written under a temporary name and renamed when complete, so a checkpoint either exists
whole or not at all (a run killed while saving leaves the previous checkpoint intact). Only the
newest ``keep`` checkpoints are kept.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lyra.fileio import replace_dir

STATE_NAME = "trainer_state.json"
_NAME = re.compile(r"^step-(\d+)$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def list_checkpoints(root: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``root`` as ``(step, path)``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_dir() and (p / STATE_NAME).is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    ckpts = list_checkpoints(root)
    return ckpts[-1][1] if ckpts else None


def capture_rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's, torch's CPU and (when present) CUDA generators."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002  (the global legacy generator is what we save)
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(accelerator: Any, root: str | os.PathLike, step: int, trainer_state: dict[str, Any],
                    keep: int | None = 2) -> Path:
    """Save a complete checkpoint of ``accelerator``'s prepared objects at ``root/step-XXXXXXXX``.

    Every process must call this (collective). Returns the final folder.
    """
    root = Path(root)
    final = root / checkpoint_name(step)
    tmp = root / f".{final.name}.tmp"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    torch.save(capture_rng_state(), tmp / f"rng_state_{accelerator.process_index}.pt")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE_NAME).write_text(json.dumps(trainer_state, indent=1, default=_json_default) + "\n")
        replace_dir(tmp, final)
        if keep is not None and keep > 0:
            for _, p in list_checkpoints(root)[:-keep]:
                shutil.rmtree(p, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Any, path: str | os.PathLike) -> dict[str, Any]:
    """Restore the prepared objects and RNG states from ``path``; return its trainer state."""
    path = Path(path)
    accelerator.load_state(str(path))
    rng_file = path / f"rng_state_{accelerator.process_index}.pt"
    if rng_file.is_file():
        # Our own file (generator states hold NumPy arrays and Python tuples): trusted, full unpickling.
        restore_rng_state(torch.load(rng_file, map_location="cpu", weights_only=False))
    return json.loads((path / STATE_NAME).read_text())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
