"""The student export folder, in the manner of diffusers' ``save_pretrained`` / ``from_pretrained``.

A student export folder holds ``model.safetensors`` (fp16 weights), ``student.json`` (``format``,
``format_version``, ``decoder``: the :class:`~lyra.student.decoder.DecoderConfig`, and the meta keys the
trainer wrote: ``preset``, ``tokenizer``, ``single_view``, ``dynamic``, ``motion_reversal``) and optionally
``training_record.json``. Use :meth:`LatentDecoder.save_pretrained` and :meth:`LatentDecoder.from_pretrained`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lyra.errors import OutputPathError, WeightsError
from lyra.fileio import replace_dir

__all__ = ["CONFIG_NAME", "EXPORT_FORMAT", "RECORD_NAME", "WEIGHTS_NAME", "read_pretrained", "save_pretrained"]

RECORD_NAME = "training_record.json"
CONFIG_NAME = "student.json"
WEIGHTS_NAME = "model.safetensors"
EXPORT_FORMAT = "lyra-student"


def is_export(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a student export (its ``student.json``)."""
    return (Path(folder) / CONFIG_NAME).is_file()


def save_pretrained(state_dict: dict[str, Tensor], config: dict[str, Any], export_dir: str | os.PathLike,
                    meta: dict[str, Any] | None = None, record: dict[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` (fp16) + ``student.json`` (+ ``training_record.json``) to ``export_dir``,
    replacing an earlier student export there (a folder holding anything else is refused). ``config``: the
    decoder's :class:`~lyra.student.decoder.DecoderConfig` as a dict."""
    from safetensors.torch import save_file

    final = Path(export_dir)
    if final.exists() and (not final.is_dir() or (any(final.iterdir()) and not (final / CONFIG_NAME).is_file())):
        raise OutputPathError(f"{final} exists and is not a student export; choose another --export-to")
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.is_dir():
        raise OutputPathError(f"{final}: folder {parent} does not exist (create it first)")
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        weights = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in state_dict.items()}
        save_file(weights, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        cfg = {"format": EXPORT_FORMAT, "format_version": 1, "decoder": config, **(meta or {})}
        (tmp / CONFIG_NAME).write_text(json.dumps(cfg, indent=2) + "\n")
        if record is not None:
            (tmp / RECORD_NAME).write_text(json.dumps(record, indent=2, default=str) + "\n")
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_pretrained(path: str | os.PathLike) -> tuple[dict[str, Any], Path]:
    """A student export folder → ``(the contents of student.json, the weights file)``; WeightsError if the folder
    is not a student export."""
    folder = Path(path)
    cfg_file = folder / CONFIG_NAME
    if not cfg_file.is_file():
        raise WeightsError(f"{folder}: no {CONFIG_NAME}; not a student export (train one with `lyra train student`)")
    meta = json.loads(cfg_file.read_text())
    if meta.get("format") != EXPORT_FORMAT:
        raise WeightsError(f"{cfg_file}: format {meta.get('format')!r} is not {EXPORT_FORMAT!r}")
    return meta, folder / WEIGHTS_NAME
