"""Image and video sizes of the world presets.

The input camera has square pixels, a centred principal point and a vertical field of view of
``fov_y_deg`` (50°: about 81° horizontally at 16:9, a common phone/action-camera view). Every frame of
every trajectory uses the same intrinsics. ``tiny`` is Lyra's first training stage (17 × 176 × 320);
``micro`` is for tests and quick checks (tokenizer-compatible: 1 + 8k frames, sides divisible by 8).
"""

from __future__ import annotations

from dataclasses import dataclass

from lyra.errors import ConfigError


@dataclass(frozen=True)
class WorldPreset:
    """Frames per trajectory ``frames``, image ``height`` × ``width`` and vertical FoV in degrees."""

    name: str
    frames: int
    height: int
    width: int
    fov_y_deg: float = 50.0


PRESETS: dict[str, WorldPreset] = {
    p.name: p
    for p in (
        WorldPreset("micro", 9, 48, 88),
        WorldPreset("tiny", 17, 176, 320),
        WorldPreset("small", 49, 176, 320),
        WorldPreset("medium", 49, 352, 640),
        WorldPreset("official", 121, 704, 1280),
    )
}


def get_preset(preset: str | WorldPreset) -> WorldPreset:
    """The preset called ``preset`` (or ``preset`` itself)."""
    if isinstance(preset, WorldPreset):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        raise ConfigError(f"unknown world preset {preset!r}; choose from {', '.join(PRESETS)}") from None
