"""Shipped tiny weights (one folder per model) and the preset/weights hub (:mod:`lyra.weights.hub`)."""

from lyra.weights.hub import (
    PRESETS,
    Preset,
    get_preset,
    pick_device,
    sha256_file,
    shipped_dir,
    weights_digest,
    weights_root,
    weights_sha256,
)

__all__ = ["PRESETS", "Preset", "get_preset", "pick_device", "sha256_file", "shipped_dir", "weights_digest",
           "weights_root", "weights_sha256"]
