"""Reading a state dict from a torch or safetensors file, unwrapping it, and loading it strictly.

Torch files are read with ``torch.load(weights_only=True)`` (tensors and plain containers only: arbitrary pickled
objects are refused); wrapper entries (``module``, ``state_dict``, ``model``) and key prefixes (``module.``,
``model.``, ``_orig_mod.``) are removed. No model is imported here (the decoder's ``from_pretrained`` uses it).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from lyra.errors import WeightsError
from lyra.fileio import check_input_file

__all__ = ["KEY_PREFIXES", "WRAPPER_KEYS", "clean_state_dict", "load_state_dict_strict", "read_state_dict"]

WRAPPER_KEYS = ("module", "state_dict", "model")
KEY_PREFIXES = ("module.", "model.", "_orig_mod.")


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a state dict from a torch file (``weights_only=True``) or a ``.safetensors`` file, unwrapped and
    with prefixes stripped (see :func:`clean_state_dict`). Tensors are loaded on the CPU."""
    p = check_input_file(path)
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            obj = load_file(str(p), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise WeightsError(f"{p}: not a readable safetensors file ({err}); re-download or re-export it") from err
    else:
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            if "unsupported global" not in str(err).lower():  # a foreign class, not a broken file
                raise WeightsError(f"{p}: not a readable torch checkpoint ({str(err).splitlines()[0]}); "
                                   "is the file complete?") from err
            raise WeightsError(
                f"{p}: holds pickled Python objects besides tensors, which are not loaded for safety; "
                "re-save only the state dict (torch.save(model.state_dict(), path)) or use safetensors") from err
        except (RuntimeError, OSError, EOFError, ValueError) as err:
            raise WeightsError(f"{p}: not a readable torch checkpoint ({err}); is the file complete?") from err
    return clean_state_dict(obj, source=str(p))


def clean_state_dict(obj: object, source: str = "checkpoint") -> dict[str, Tensor]:
    """Unwrap ``{"module"|"state_dict"|"model": sd}`` (nested allowed) and strip key prefixes
    (``module.``, ``model.``, ``_orig_mod.``, repeatedly) from a loaded checkpoint object."""
    while isinstance(obj, Mapping) and not _is_state_dict(obj):
        inner = next((obj[k] for k in WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not _is_state_dict(obj):
        keys = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise WeightsError(f"{source}: no state dict found (top level: {keys}); expected a mapping of "
                           f"parameter names to tensors, possibly under one of {WRAPPER_KEYS}")
    out: dict[str, Tensor] = {}
    for key, value in obj.items():
        name = str(key)
        stripped = True
        while stripped:
            stripped = False
            for prefix in KEY_PREFIXES:
                if name.startswith(prefix):
                    name, stripped = name[len(prefix):], True
        out[name] = value
    return out


def _is_state_dict(obj: Mapping) -> bool:
    return len(obj) > 0 and all(isinstance(v, Tensor) for v in obj.values())


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, Tensor], source: str = "checkpoint") -> None:
    """Copy ``state_dict`` into ``model``; raise ``WeightsError`` listing every missing, unexpected and
    mis-shaped key (nothing is changed in ``model`` then)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(f"{k}: file {list(state_dict[k].shape)} vs model {list(own[k].shape)}"
                    for k in set(own) & set(state_dict) if tuple(state_dict[k].shape) != tuple(own[k].shape))
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)):
            if items:
                shown = ", ".join(items[:12]) + (f", … ({len(items) - 12} more)" if len(items) > 12 else "")
                parts.append(f"{len(items)} {label}: {shown}")
        raise WeightsError(f"{source} does not match the decoder ({'; '.join(parts)}); "
                           "check that the file and the preset/config belong together")
    model.load_state_dict(dict(state_dict), strict=True)
