"""Text → image, the third kind of input beside images and videos (:mod:`lyra.inputs`; ``lyra generate --prompt``):
a local diffusers text-to-image pipeline draws the image the product then lifts to 3D (:func:`image_from_prompt`).
Nothing is downloaded here."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lyra.errors import ConfigError, WeightsError
from lyra.inputs import _first_line, fit_to_size
from lyra.weights.hub import pick_device

__all__ = ["T2I_SIZE_MULTIPLE", "image_from_prompt"]


#: A text-to-image pipeline draws at the asked size rounded up to a multiple of this and of twice its VAE factor
#: (SD/SDXL need multiples of 8, FLUX and SD3 of 16).
T2I_SIZE_MULTIPLE = 8


def _t2i_dtype(device: torch.device) -> torch.dtype:
    """float32 on the CPU; bfloat16 on a CUDA GPU that has it, else float16."""
    if device.type == "cpu":
        return torch.float32
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def _t2i_images_to_tensor(images: Any) -> Tensor:
    """A diffusers pipeline's ``.images`` (a ``[B, 3, H, W]`` / ``[3, H, W]`` tensor, a ``[B, H, W, 3]`` array or a
    list of PIL images) → the first image as float ``[3, H, W]`` on the CPU."""
    import numpy as np

    first = images[0] if isinstance(images, (list, tuple)) else images
    if isinstance(first, Tensor):
        img = first[0] if first.dim() == 4 else first
        if img.dim() == 3 and img.shape[0] not in (1, 3) and img.shape[-1] in (1, 3):
            img = img.permute(2, 0, 1)
    elif isinstance(first, np.ndarray):
        arr = first[0] if first.ndim == 4 else first
        img = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
    else:  # a PIL image
        arr = np.asarray(first.convert("RGB")).astype("float32") / 255.0
        img = torch.from_numpy(arr).permute(2, 0, 1)
    img = img.detach().float().cpu()
    if img.dim() != 3 or img.shape[0] not in (1, 3):
        raise WeightsError(f"the text-to-image pipeline returned an image of shape {tuple(img.shape)}, not [3, H, W]")
    return img.expand(3, -1, -1).contiguous()


def image_from_prompt(prompt: str, model: str | os.PathLike | None, height: int, width: int, seed: int = 0,
                      steps: int | None = None, guidance: float | None = None, device: str | torch.device = "auto",
                      dtype: torch.dtype | None = None, progress: bool = False) -> Tensor:
    """Text → image ``[3, height, width]`` (float32, CPU, in [0, 1]) through a local diffusers text-to-image
    pipeline folder (``AutoPipelineForText2Image.from_pretrained(model, local_files_only=True)``: SD 1.x/2.x, SDXL,
    SD3, FLUX, ... saved with ``save_pretrained`` or downloaded beforehand; nothing is downloaded here).

    The pipeline draws at ``height × width`` rounded up to its size multiple (8, or twice its VAE factor: 16 for
    FLUX/SD3); a rounded-up image is centre-cropped and resized back to ``height × width``. The pipeline is freed
    on return.

    Args:
        prompt: the text.
        model: the pipeline folder (its ``model_index.json`` names the pipeline class).
        height, width: the size of the returned image (positive).
        seed: seeds a CPU ``torch.Generator`` for the initial noise: same seed → same image, on any device.
        steps: ``num_inference_steps`` (default: the pipeline's own, e.g. 50 for SD; 1–4 suit turbo models).
        guidance: ``guidance_scale`` (default: the pipeline's own; 0 for sd-turbo / sdxl-turbo).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        dtype: weights dtype (default float32 on the CPU, bfloat16 on a CUDA GPU that has it, else float16).
        progress: show the pipeline's sampling bar on stderr.

    Raises:
        ConfigError: an empty prompt, no ``model``, a folder that is not a diffusers pipeline, a bad size, steps,
            guidance or seed. WeightsError: the pipeline cannot be loaded, is not a text-to-image pipeline, or
            made non-finite pixels. All messages are one line.
    """
    import warnings

    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError("the prompt is empty; give a text prompt")
    if model is None:
        raise ConfigError("a text prompt needs a local text-to-image model: pass --t2i-model DIR (a diffusers "
                          "pipeline folder with a model_index.json, e.g. Stable Diffusion, SDXL or FLUX downloaded "
                          "or saved with save_pretrained)")
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"--t2i-model {model}: no such folder; pass a local diffusers text-to-image pipeline "
                          "folder (the one holding model_index.json)")
    if not (folder / "model_index.json").is_file():
        raise ConfigError(f"--t2i-model {model}: not a diffusers pipeline folder (no model_index.json); pass the "
                          "pipeline's top folder, e.g. a Stable Diffusion / SDXL / FLUX folder saved with "
                          "save_pretrained")
    import json

    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"--t2i-model {model}: unreadable model_index.json ({_first_line(e)})") from None
    if not isinstance(index, dict) or not isinstance(index.get("_class_name"), str):
        raise ConfigError(f"--t2i-model {model}: model_index.json names no pipeline class (_class_name); pass a "
                          "diffusers pipeline folder")
    height, width = int(height), int(width)
    if height <= 0 or width <= 0:
        raise ConfigError(f"the prompt image size must be positive, got {width}x{height}")
    if steps is not None and (isinstance(steps, bool) or int(steps) < 1):
        raise ConfigError(f"text-to-image steps must be >= 1, got {steps}")
    if guidance is not None and not (math.isfinite(float(guidance)) and float(guidance) >= 0):
        raise ConfigError(f"text-to-image guidance must be a finite number >= 0, got {guidance}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    dev = pick_device(device)
    dtype = dtype or _t2i_dtype(dev)

    with _quiet_hf_logging():
        try:
            from diffusers import AutoPipelineForText2Image
        except Exception as e:  # noqa: BLE001 - diffusers (or a dependency) missing or broken
            raise WeightsError(f"--t2i-model needs diffusers and transformers ({_first_line(e)})") from None
        try:
            with warnings.catch_warnings():  # newer diffusers: torch_dtype → dtype; older: no dtype
                warnings.filterwarnings("ignore", message=".*torch_dtype.*deprecated", category=FutureWarning)
                pipe = AutoPipelineForText2Image.from_pretrained(str(folder), local_files_only=True,
                                                                 torch_dtype=dtype)
        except Exception as e:  # noqa: BLE001 - any loading problem is the user's folder
            cls = index["_class_name"]
            raise WeightsError(f"--t2i-model {model}: cannot load the {cls} text-to-image pipeline "
                               f"({_first_line(e)})") from None
    try:
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=not progress, desc="text_to_image", leave=False)
        multiple = max(T2I_SIZE_MULTIPLE, 2 * int(getattr(pipe, "vae_scale_factor", 0) or 0))
        gh, gw = (-(-s // multiple) * multiple for s in (height, width))
        kwargs: dict[str, Any] = {"height": gh, "width": gw, "output_type": "pt",
                                  "generator": torch.Generator(device="cpu").manual_seed(seed)}
        if steps is not None:
            kwargs["num_inference_steps"] = int(steps)
        if guidance is not None:
            kwargs["guidance_scale"] = float(guidance)
        try:
            pipe = pipe.to(dev)
            images = pipe(prompt=prompt, **kwargs).images
        except torch.cuda.OutOfMemoryError:
            raise WeightsError(f"--t2i-model {model}: out of GPU memory making a {gw}x{gh} image; try a smaller "
                               "--size or --device cpu") from None
        except TypeError as e:
            raise WeightsError(f"--t2i-model {model}: {index['_class_name']} does not take a text prompt with "
                               f"height/width ({_first_line(e)}); pass a text-to-image pipeline") from None
    finally:
        del pipe
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    img = _t2i_images_to_tensor(images)
    if not torch.isfinite(img).all():
        raise WeightsError(f"--t2i-model {model}: the pipeline made non-finite pixels (a {dtype} overflow?); "
                           "try --device cpu (float32)")
    if tuple(img.shape[-2:]) != (height, width):
        img, _ = fit_to_size(img, height, width)
    return img.clamp(0, 1).contiguous()


@contextmanager
def _quiet_hf_logging() -> Iterator[None]:
    """Within the block, diffusers and transformers log errors only and show no loading bars (restored after)."""
    import importlib
    from functools import partial

    restore: list[Callable[[], None]] = []
    for name in ("diffusers", "transformers"):
        try:
            log = importlib.import_module(f"{name}.utils.logging")
        except ImportError:  # not installed: nothing to quiet
            continue
        restore.append(partial(log.set_verbosity, log.get_verbosity()))
        log.set_verbosity_error()
        if log.is_progress_bar_enabled():
            log.disable_progress_bar()
            restore.append(log.enable_progress_bar)
    try:
        yield
    finally:
        for undo in reversed(restore):
            undo()
