"""Argument helpers shared by the sub-commands (``pick_device`` is :func:`lyra.weights.hub.pick_device`)."""

from __future__ import annotations

import argparse

from lyra.weights.hub import pick_device  # noqa: F401  (the one device picker; re-exported for the commands)

BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "gray": (0.5, 0.5, 0.5)}


def parse_size(text: str) -> tuple[int, int]:
    """``"HxW"`` → ``(height, width)`` as an argparse ``type`` (:func:`lyra.inputs.parse_size`, any positive
    size)."""
    from lyra.errors import ConfigError
    from lyra.inputs import parse_size as parse

    try:
        return parse(text, option="size")
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA when present). "
                        "Default: auto")
