"""Seeds: one stable mixing function for every random stream derived from a seed."""

from __future__ import annotations

__all__ = ["mix_seed"]


def mix_seed(*values: int) -> int:
    """A 62-bit seed mixed from integers (splitmix64 steps; stable across processes and runs)."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (int(v) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h >> 2
