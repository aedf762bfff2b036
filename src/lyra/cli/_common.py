"""Argument helpers shared by the sub-commands."""

from __future__ import annotations

import argparse

import torch

from lyra.errors import ConfigError

BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "gray": (0.5, 0.5, 0.5)}


def parse_size(text: str) -> tuple[int, int]:
    """``"HxW"`` → ``(height, width)``."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like HEIGHTxWIDTH (e.g. 176x320), got {text!r}") from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return h, w


def parse_color(text: str) -> tuple[float, float, float]:
    """A colour name (white, black, gray) or ``r,g,b`` in [0, 1]."""
    if text.lower() in BACKGROUNDS:
        return BACKGROUNDS[text.lower()]
    try:
        rgb = tuple(float(v) for v in text.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0.0 <= v <= 1.0 for v in rgb):
        raise argparse.ArgumentTypeError(f"colour must be white, black, gray or r,g,b in [0,1], got {text!r}")
    return rgb  # type: ignore[return-value]


def parse_vector(text: str) -> tuple[float, float, float]:
    try:
        v = tuple(float(x) for x in text.split(","))
    except ValueError:
        v = ()
    if len(v) != 3:
        raise argparse.ArgumentTypeError(f"expected three comma-separated numbers x,y,z, got {text!r}")
    return v  # type: ignore[return-value]


def pick_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; otherwise the named device (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but no CUDA GPU is available (use --device cpu)")
    return torch.device(name)


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA when present). "
                        "Default: auto")
