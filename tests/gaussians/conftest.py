"""Shared fixtures for the Gaussians tests: seeded random Gaussians."""

from __future__ import annotations

import pytest
import torch

from lyra.gaussians import Gaussians


def random_gaussians(n: int = 500, sh_degree: int = 0, seed: int = 0, extent: float = 5.0) -> Gaussians:
    """N valid Gaussians: unit quaternions, scales in [0.01, 0.51], opacities in [0.01, 0.99],
    colours in [0, 1], SH coefficients in [-0.8, 0.8] (within every format's range)."""
    g = torch.Generator().manual_seed(seed)
    k = (sh_degree + 1) ** 2 - 1
    return Gaussians(
        means=(torch.rand(n, 3, generator=g) * 2 - 1) * extent,
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1),
        scales=torch.rand(n, 3, generator=g) * 0.5 + 0.01,
        opacities=torch.rand(n, generator=g) * 0.98 + 0.01,
        colors=torch.rand(n, 3, generator=g),
        sh_rest=(torch.rand(n, k, 3, generator=g) * 1.6 - 0.8) if k else None,
    )


@pytest.fixture
def make_gaussians():
    """Factory fixture: ``make_gaussians(n, sh_degree, seed)``."""
    return random_gaussians
