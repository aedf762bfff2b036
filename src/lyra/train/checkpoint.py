"""Atomic, verified training checkpoints with everything an exact resume needs, and no pickled code.

A checkpoint is a folder ``<root>/step-00001000/`` holding

* what ``accelerate``'s ``save_state`` writes: model (``model.safetensors``, or FSDP/DeepSpeed shards),
  optimiser, LR scheduler, gradient scaler (all read back with ``weights_only=True``);
* ``ema.safetensors``: the EMA's shadow weights (decay and update count in the file's metadata), when
  the run keeps an EMA;
* ``rng_state_<rank>.pt``: the Python, NumPy, torch CPU and CUDA generator states of every process, as
  tensors, ints and tuples only (read with ``weights_only=True``: a planted ``__reduce__`` never runs);
* ``trainer_state.json``: step, data position, elapsed time, the training config, the last metrics;
* ``manifest.json``, written **last**: the size and SHA-256 of every other file.

The folder is written under a temporary name and renamed when complete, so a checkpoint either exists
whole or not at all. On resume, :func:`resume_latest` checks a checkpoint against its manifest before
loading it; a damaged one (truncated file, edited state, malformed JSON, an unpicklable payload) is
skipped, saying so, for the newest intact one. Only the newest ``keep`` checkpoints are kept.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import shutil
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError

from lyra.errors import LyraError
from lyra.fileio import replace_dir
from lyra.weights.hub import sha256_file

STATE_NAME = "trainer_state.json"
MANIFEST_NAME = "manifest.json"
EMA_NAME = "ema.safetensors"
#: ``format`` of checkpoints with a manifest, a safetensors EMA and tensor-only RNG states.
FORMAT = 2
_NAME = re.compile(r"^step-(\d+)$")


class CheckpointError(LyraError):
    """A checkpoint folder is damaged (missing or truncated file, hash mismatch, unreadable content)."""


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def list_checkpoints(root: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``root`` as ``(step, path)``, oldest first.

    Complete: the folder has its manifest (or, for checkpoints of format 1, its ``trainer_state.json``).
    Whether the files still match the manifest is checked on loading (:func:`verify_checkpoint`).
    """
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_dir() and ((p / MANIFEST_NAME).is_file() or (p / STATE_NAME).is_file()):
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    ckpts = list_checkpoints(root)
    return ckpts[-1][1] if ckpts else None


# ------------------------------------------------------------------------------------------------ RNG states
def capture_rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's, torch's CPU and (when present) CUDA generators, as tensors, ints,
    floats and tuples only (so that ``torch.load(weights_only=True)`` reads them back)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002  (the global legacy generator)
    state: dict[str, Any] = {
        "python": (int(version), torch.tensor(internal, dtype=torch.int64), gauss),
        "numpy": (str(kind), torch.from_numpy(np.asarray(keys).astype(np.int64)), int(pos), int(has_gauss),
                  float(cached)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (also reads format-1 states: raw tuples and NumPy arrays)."""
    version, internal, gauss = state["python"]
    if isinstance(internal, torch.Tensor):
        internal = tuple(int(v) for v in internal.tolist())
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    np.random.set_state((kind, keys.astype(np.uint32), int(pos), int(has_gauss), float(cached)))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _load_rng_file(path: Path) -> dict[str, Any]:
    """``weights_only=True`` always; format-1 files held NumPy arrays, allowed through NumPy's array
    reconstructors only (no other global, so no code runs)."""
    core = getattr(np, "_core", None) or np.core
    safe: list[Any] = [np.ndarray, np.dtype, core.multiarray._reconstruct]
    if hasattr(np, "dtypes"):
        safe.append(np.dtypes.UInt32DType)
    with torch.serialization.safe_globals(safe):
        return torch.load(path, map_location="cpu", weights_only=True)


# ------------------------------------------------------------------------------------------------ EMA
def save_ema(ema: Any, path: Path) -> None:
    """The EMA's shadow weights as safetensors; decay and update count in the metadata."""
    from safetensors.torch import save_file

    state = ema.state_dict()
    tensors = {k: v.detach().cpu().contiguous() for k, v in state["shadow"].items()}
    save_file(tensors, str(path), metadata={"decay": repr(float(state["decay"])),
                                            "num_updates": str(int(state["num_updates"]))})


def load_ema(ema: Any, folder: Path) -> None:
    from safetensors import safe_open

    path = folder / EMA_NAME
    if path.is_file():
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            shadow = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        ema.load_state_dict({"decay": float(meta["decay"]), "num_updates": int(meta["num_updates"]),
                             "shadow": shadow})
        return
    legacy = folder / "custom_checkpoint_0.pkl"  # format 1: accelerate's pickle, read without code
    if legacy.is_file():
        ema.load_state_dict(torch.load(legacy, map_location="cpu", weights_only=True))
        return
    raise CheckpointError(f"{folder}: no {EMA_NAME} although the run keeps an EMA")


# ------------------------------------------------------------------------------------------------ manifest
def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)


def write_manifest(folder: Path) -> Path:
    """Record size and SHA-256 of every file in ``folder`` (read back from disk) in ``manifest.json``."""
    files = {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": sha256_file(p)}
             for p in _files(folder)}
    out = folder / MANIFEST_NAME
    tmp = folder / f".{MANIFEST_NAME}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps({"format": FORMAT, "files": files}, indent=1) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    return out


def verify_checkpoint(folder: str | os.PathLike) -> None:
    """Check ``folder`` against its manifest (every file present, same size, same SHA-256, nothing added).

    Raises:
        CheckpointError: what is wrong. A format-1 checkpoint (no manifest) is only checked for
            ``trainer_state.json``.
    """
    folder = Path(folder)
    mpath = folder / MANIFEST_NAME
    if not mpath.is_file():
        if not (folder / STATE_NAME).is_file():
            raise CheckpointError(f"{folder}: no {MANIFEST_NAME} (an unfinished checkpoint)")
        return
    try:
        manifest = json.loads(mpath.read_text())
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not a mapping")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{folder}: unreadable {MANIFEST_NAME} ({e})") from None
    for name, entry in files.items():
        p = folder / name
        if not p.is_file():
            raise CheckpointError(f"{folder}: {name} is missing")
        if p.stat().st_size != entry.get("size"):
            raise CheckpointError(f"{folder}: {name} has {p.stat().st_size} bytes, the manifest says "
                                  f"{entry.get('size')} (truncated or replaced)")
        if sha256_file(p) != entry.get("sha256"):
            raise CheckpointError(f"{folder}: {name} does not match its SHA-256 in the manifest (modified)")
    extra = [p.relative_to(folder).as_posix() for p in _files(folder)
             if p.relative_to(folder).as_posix() not in files]
    if extra:
        raise CheckpointError(f"{folder}: files not in the manifest: {', '.join(extra[:3])}")


# ------------------------------------------------------------------------------------------------ save / load
def save_checkpoint(accelerator: Any, root: str | os.PathLike, step: int, trainer_state: dict[str, Any],
                    keep: int | None = 2, ema: Any = None) -> Path:
    """Save a complete checkpoint of ``accelerator``'s prepared objects (and ``ema``) at ``root/step-XXXXXXXX``.

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
        if ema is not None:
            save_ema(ema, tmp / EMA_NAME)
        state = {**trainer_state, "format": FORMAT}
        (tmp / STATE_NAME).write_text(json.dumps(state, indent=1, default=_json_default) + "\n")
        write_manifest(tmp)  # last: its presence marks the folder complete
        replace_dir(tmp, final)
        if keep is not None and keep > 0:
            for _, p in list_checkpoints(root)[:-keep]:
                shutil.rmtree(p, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Any, path: str | os.PathLike, ema: Any = None) -> dict[str, Any]:
    """Verify ``path`` against its manifest, restore the prepared objects, ``ema`` and the RNG states from it;
    return its trainer state.

    Nothing is unpickled beyond tensors and plain containers (``weights_only=True`` throughout).

    Raises:
        CheckpointError: the checkpoint is damaged (the objects may then be partly overwritten: load
            another checkpoint into them, as :func:`resume_latest` does).
    """
    path = Path(path)
    verify_checkpoint(path)
    try:
        state = json.loads((path / STATE_NAME).read_text())
        if not isinstance(state, dict) or not isinstance(state.get("step"), int):
            raise ValueError("no integer 'step'")
        accelerator.load_state(str(path))
        if ema is not None:
            load_ema(ema, path)
        rng_file = path / f"rng_state_{accelerator.process_index}.pt"
        if rng_file.is_file():
            restore_rng_state(_load_rng_file(rng_file))
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError, IndexError, AttributeError,
            pickle.UnpicklingError, zipfile.BadZipFile, SafetensorError) as e:
        detail = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: cannot be loaded ({type(e).__name__}: {detail})") from None
    return state


def resume_latest(accelerator: Any, candidates: list[Path], ema: Any = None,
                  say: Callable[[str], None] | None = None) -> tuple[Path, dict[str, Any]]:
    """Load the newest intact checkpoint of ``candidates`` (oldest first), skipping damaged ones with a message.

    Raises:
        CheckpointError: none of them loads.
    """
    say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))
    errors = []
    for path in reversed(candidates):
        try:
            return path, load_checkpoint(accelerator, path, ema)
        except CheckpointError as e:
            errors.append(str(e))
            say(f"warning: skipping damaged checkpoint: {e}")
    raise CheckpointError(f"no intact checkpoint to resume ({len(errors)} damaged: {errors[0]}); move the "
                          "checkpoints folder aside to start afresh")


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
