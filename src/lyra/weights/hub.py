"""The one preset and weights hub: which models a preset uses, where their weights are, what they hash to,
and which device runs them.

A :class:`Preset` names the tokenizer, the teacher (static and dynamic), the depth net, the student (static
and dynamic) and the working size; shipped weights are folders under ``src/lyra/weights/`` (``None``: not
shipped, pass a folder). Every model finds its shipped weights here: the preset's teacher and student folders
(:func:`preset_weights_dir`), the tokenizer's (:data:`TOKENIZERS`, :func:`tokenizer_dir`) and the depth net's
(:data:`DEPTH_NETS`, :func:`depth_net_dir`). The architectures (config presets) stay with their models. Everything
here is plain data and file hashing: no model is imported.

* :func:`pick_device` — the one device picker (``auto`` → CUDA when present, else CPU);
* :func:`sha256_file`, :func:`weights_sha256` (per file of a folder), :func:`weights_hashes` (a file's hash or
  a folder's per-file hashes: the product's provenance) and :func:`weights_digest` (one hash of a weights tree)
  — the SHA-256 routines every record and manifest uses.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from lyra.errors import ConfigError, InputFileError

__all__ = ["DEPTH_NETS", "PRESETS", "TOKENIZERS", "Preset", "depth_net_dir", "get_preset", "pick_device",
           "preset_weights_dir", "sha256_file", "shipped_dir", "tokenizer_dir", "weights_digest", "weights_hashes",
           "weights_root", "weights_sha256"]


@dataclass(frozen=True)
class Preset:
    """The models of a preset and its working size.

    Attributes:
        name: ``tiny`` or ``official``.
        tokenizer: tokenizer preset (:mod:`lyra.tokenizer.presets`) of the static teacher and student.
        denoiser: teacher denoiser config preset (:mod:`lyra.teacher.denoiser`).
        teacher: shipped teacher folder under ``lyra/weights/`` (``None``: pass ``weights=DIR``).
        teacher_dynamic: shipped dynamic teacher fine-tune folder (``None``: none).
        depth: depth-net preset (:mod:`lyra.teacher.depth_net`; ``None``: an external estimator or given depth).
        student: shipped student export folder (``None``: pass ``student=DIR``).
        student_dynamic: shipped dynamic student export folder (``None``: none).
        size: working size ``(frames, height, width)`` the weights were trained at.
        world: the :mod:`lyra.world` preset of that size (the training and evaluation worlds).
        tokenizer_dynamic: tokenizer preset the dynamic teacher and student read (``None``: ``tokenizer``);
            :meth:`tokenizer_for` resolves it.
    """

    name: str
    tokenizer: str
    denoiser: str
    teacher: str | None
    teacher_dynamic: str | None
    depth: str | None
    student: str | None
    student_dynamic: str | None
    size: tuple[int, int, int]
    world: str
    tokenizer_dynamic: str | None = None

    def tokenizer_for(self, dynamic: bool = False) -> str:
        """The tokenizer preset of the static (``dynamic=False``) or dynamic teacher and student."""
        return (self.tokenizer_dynamic or self.tokenizer) if dynamic else self.tokenizer


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", tokenizer="tiny", denoiser="tiny", teacher="teacher_tiny",
                   teacher_dynamic="teacher_tiny_dynamic", depth="tiny", student="student_tiny",
                   student_dynamic="student_tiny_dynamic", size=(17, 176, 320), world="tiny"),
    "official": Preset("official", tokenizer="official", denoiser="official", teacher=None, teacher_dynamic=None,
                       depth=None, student=None, student_dynamic=None, size=(121, 704, 1280), world="official"),
}


#: Shipped tokenizer weights folders by tokenizer preset (:mod:`lyra.tokenizer.presets`; ``None``: not shipped,
#: the official tokenizer is found through ``$LYRA_COSMOS_TOKENIZER``).
TOKENIZERS: dict[str, str | None] = {"tiny": "tokenizer_tiny", "tiny_block": "tokenizer_tiny_block",
                                     "tiny_v2": "tokenizer_tiny_v2", "official": None}
#: Shipped depth-net weights folders by depth-net preset (:mod:`lyra.teacher.depth_net`).
#: ``tiny``: trained on the classic procedural worlds (the procedural benchmark's depth); ``tiny_photo``: the same
#: net fine-tuned on photo-style worlds (:mod:`lyra.world.photo`), better on real photographs (docs/benchmarks.md).
DEPTH_NETS: dict[str, str] = {"tiny": "depth_tiny", "tiny_photo": "depth_tiny_photo"}


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (ConfigError naming the choices otherwise)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def weights_root() -> Path:
    """The folder of the shipped weights (``src/lyra/weights``)."""
    return Path(__file__).resolve().parent


def shipped_dir(folder: str) -> Path:
    """``weights_root() / folder`` (the folder may be absent in a trimmed install)."""
    return weights_root() / folder


def preset_weights_dir(name: str, part: str) -> Path | None:
    """The shipped folder of ``part`` (``teacher``, ``teacher_dynamic``, ``student``, ``student_dynamic``) of preset
    ``name``, or ``None`` when the preset ships none (the folder may still be absent in a trimmed install)."""
    if part not in ("teacher", "teacher_dynamic", "student", "student_dynamic"):
        raise ValueError(f"unknown preset part {part!r}")
    folder = getattr(get_preset(name), part)
    return None if folder is None else shipped_dir(folder)


def tokenizer_dir(name: str) -> Path | None:
    """The shipped weights folder of tokenizer preset ``name`` (``None``: not shipped, e.g. ``official``)."""
    if name not in TOKENIZERS:
        raise ConfigError(f"unknown tokenizer preset {name!r}; choose one of {', '.join(TOKENIZERS)}")
    folder = TOKENIZERS[name]
    return None if folder is None else shipped_dir(folder)


def depth_net_dir(name: str) -> Path:
    """The shipped weights folder of depth-net preset ``name``."""
    if name not in DEPTH_NETS:
        raise ConfigError(f"unknown depth preset {name!r}; choose from {', '.join(DEPTH_NETS)}")
    return shipped_dir(DEPTH_NETS[name])


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; a ``torch.device`` as it is; otherwise the named device,
    checked: one of ``cpu``, ``cuda``, ``cuda:N``, ``mps`` and present on this machine (ConfigError otherwise)."""
    import re

    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", device):
        raise ConfigError(f"--device {device!r}: unknown device; use auto, cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device} was asked for, but no CUDA GPU is available (use --device cpu)")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError("--device mps was asked for, but MPS is not available (use --device cpu)")
    return torch.device(device)


def sha256_file(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file (what ``sha256sum`` prints), read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_sha256(folder: str | os.PathLike) -> dict[str, str]:
    """SHA-256 of every ``.safetensors`` / ``.json`` file directly in ``folder`` (name → hex digest)."""
    return {f.name: sha256_file(f) for f in sorted(Path(folder).iterdir())
            if f.is_file() and f.suffix in (".safetensors", ".json")}


def weights_hashes(path: str | os.PathLike | None) -> dict[str, str] | str | None:
    """What a run records of the weights it used: a file's SHA-256, a folder's :func:`weights_sha256`, ``None``
    for no path or a path that is not there."""
    if path is None:
        return None
    p = Path(path)
    if p.is_file():
        return sha256_file(p)
    if p.is_dir():
        return weights_sha256(p)
    return None


def weights_digest(path: str | os.PathLike) -> str:
    """One SHA-256 of a weights file or tree: a file's own hash; for a folder, of its ``*.safetensors`` files
    (recursively): one file's hash, or with several the hash of the lines ``"relative/name sha256"`` in name
    order. InputFileError when a folder holds no weights."""
    p = Path(path)
    if p.is_file():
        return sha256_file(p)
    files = sorted(p.rglob("*.safetensors")) if p.is_dir() else []
    if not files:
        raise InputFileError(f"{p}: no weights (*.safetensors) to hash")
    if len(files) == 1:
        return sha256_file(files[0])
    lines = "".join(f"{f.relative_to(p).as_posix()} {sha256_file(f)}\n" for f in files)
    return hashlib.sha256(lines.encode()).hexdigest()
