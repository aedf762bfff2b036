"""Argument helpers shared by the sub-commands (``pick_device`` is :func:`lyra.weights.hub.pick_device`)."""

from __future__ import annotations

import argparse
import math

from lyra.errors import ConfigError
from lyra.media import MAX_FPS
from lyra.weights.hub import pick_device  # noqa: F401  (the one device picker; re-exported for the commands)

#: Largest image side rendered or generated (a float RGB frame of 8192² is 0.8 GB).
MAX_SIDE = 8192

BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "gray": (0.5, 0.5, 0.5)}


def parse_size(text: str) -> tuple[int, int]:
    """``"HxW"`` → ``(height, width)`` as an argparse ``type`` (:func:`lyra.inputs.parse_size`, any positive
    size)."""
    from lyra.inputs import parse_size as parse

    try:
        h, w = parse(text, option="size")
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if max(h, w) > MAX_SIDE:
        raise argparse.ArgumentTypeError(f"size {text!r} is larger than lyra renders ({MAX_SIDE} pixels a side)")
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
    if len(v) != 3 or not all(math.isfinite(x) for x in v):
        raise argparse.ArgumentTypeError(f"expected three comma-separated finite numbers x,y,z, got {text!r}")
    return v  # type: ignore[return-value]


def check_number(name: str, value: float | None, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = True) -> None:
    """ConfigError unless ``value`` (an option, ``None`` = not given) is finite and within ``(lo, hi]``
    (``[lo, hi]`` when ``lo_open`` is false)."""
    if value is None:
        return
    low = "" if lo is None else (f"> {lo:g}" if lo_open else f">= {lo:g}")
    high = "" if hi is None else f"<= {hi:g}"
    rule = " and ".join(t for t in (low, high) if t) or "finite"
    ok = math.isfinite(value) and (lo is None or (value > lo if lo_open else value >= lo)) \
        and (hi is None or value <= hi)
    if not ok:
        raise ConfigError(f"--{name} must be a finite number {rule}, got {value}")


def check_fps(value: float) -> None:
    check_number("fps", value, 0.0, MAX_FPS)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (``lyra CMD: error: ... (see lyra CMD --help)``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA when present). "
                        "Default: auto")
