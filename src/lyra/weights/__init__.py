"""Shipped tiny weights (one folder per model) and the preset/weights hub (:mod:`lyra.weights.hub`)."""

from lyra.weights.hub import (
    DEPTH_NETS,
    PRESETS,
    TOKENIZERS,
    Preset,
    depth_net_dir,
    get_preset,
    pick_device,
    preset_weights_dir,
    sha256_file,
    shipped_dir,
    tokenizer_dir,
    weights_digest,
    weights_hashes,
    weights_root,
    weights_sha256,
)

__all__ = ["DEPTH_NETS", "PRESETS", "TOKENIZERS", "Preset", "depth_net_dir", "get_preset", "pick_device",
           "preset_weights_dir", "sha256_file", "shipped_dir", "tokenizer_dir", "weights_digest", "weights_hashes",
           "weights_root", "weights_sha256"]
