"""Loading the released decoder checkpoint (``lyra_static.pt`` / ``lyra_dynamic.pt``) or any state dict file.

The release stores a torch file whose ``"module"`` entry is the state dict (DeepSpeed style). Files are read
with ``torch.load(weights_only=True)`` (tensors and plain containers only: arbitrary pickled objects are
refused) or with safetensors; wrapper entries (``module``, ``state_dict``, ``model``) and key prefixes
(``module.``, ``model.``, ``_orig_mod.``) are removed, then the weights are loaded strictly.
"""

from __future__ import annotations

import os

import torch

from lyra.student.decoder import DecoderConfig, LatentDecoder, decoder_config
from lyra.student.state_dict import (  # re-exported: the state-dict helpers live in lyra.student.state_dict
    KEY_PREFIXES,
    WRAPPER_KEYS,
    clean_state_dict,
    load_state_dict_strict,
    read_state_dict,
)

__all__ = ["KEY_PREFIXES", "WRAPPER_KEYS", "clean_state_dict", "load_official_checkpoint", "load_state_dict_strict",
           "read_state_dict"]


def load_official_checkpoint(path: str | os.PathLike, config: str | DecoderConfig = "official",
                             device: torch.device | str = "cpu") -> LatentDecoder:
    """Build the decoder of ``config`` (default: the release's) and load the checkpoint at ``path`` strictly.

    Raises:
        InputFileError: the file is missing or empty.
        WeightsError: the file cannot be read safely, or its keys/shapes do not match the decoder.
    """
    state = read_state_dict(path)
    with torch.device("meta"):
        model = LatentDecoder(decoder_config(config))
    model = model.to_empty(device=device)
    load_state_dict_strict(model, state, source=str(path))
    return model.eval()
