"""The student: Lyra's 3DGS decoder (bidirectional Mamba-2 + Transformer) and its Gaussian activations."""

from lyra.student.checkpoint import (
    clean_state_dict,
    load_official_checkpoint,
    load_state_dict_strict,
    read_state_dict,
)
from lyra.student.decoder import (
    PRESETS,
    DecoderConfig,
    LatentDecoder,
    VideoEncoder,
    decoder_config,
    plucker_latents,
    time_latents,
)
from lyra.student.heads import GaussianActivations, raw_to_gaussians
from lyra.student.mamba2 import BiMamba2, Mamba2Block, mamba_ssm_available, ssd_chunked

__all__ = [
    "PRESETS", "BiMamba2", "DecoderConfig", "GaussianActivations", "LatentDecoder", "Mamba2Block", "VideoEncoder",
    "clean_state_dict", "decoder_config", "load_official_checkpoint", "load_state_dict_strict",
    "mamba_ssm_available", "plucker_latents", "raw_to_gaussians", "read_state_dict", "ssd_chunked",
    "time_latents",
]
