"""The video tokenizer: Cosmos CV8x8x8 (diffusers ``AutoencoderKLCosmos``), presets ``tiny`` / ``official``.

``Tokenizer.encode(video [B, T, 3, H, W] in [0, 1]) -> latents [B, 16, 1 + (T-1)/8, H/8, W/8]``,
``Tokenizer.decode(latents) -> video``; ``normalize``/``denormalize`` for the diffusion models.
"""

from lyra.tokenizer.presets import LATENT_CHANNELS, PRESETS, SPATIAL_COMPRESSION, TEMPORAL_COMPRESSION, preset_config
from lyra.tokenizer.tokenizer import SIGMA_DATA, Tokenizer, latent_frames

__all__ = [
    "LATENT_CHANNELS",
    "PRESETS",
    "SIGMA_DATA",
    "SPATIAL_COMPRESSION",
    "TEMPORAL_COMPRESSION",
    "Tokenizer",
    "latent_frames",
    "preset_config",
]
