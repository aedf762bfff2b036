"""Fixtures of the student tests."""

from __future__ import annotations

import pytest
import torch

from tests.student.student_helpers import StandInEncoder, make_cameras


@pytest.fixture
def encoder() -> StandInEncoder:
    return StandInEncoder()


@pytest.fixture
def tiny_inputs():
    """Inputs of the tiny preset at a reduced size: B=1, V=2, t=2 (T=9), latents 4×6 (images 32×48)."""
    g = torch.Generator().manual_seed(1)
    B, V, t, h, w = 1, 2, 2, 4, 6
    latents = torch.randn(B, V, 16, t, h, w, generator=g)
    plucker = torch.randn(B, V, 32, t, h, w, generator=g)
    cams = make_cameras(B, V, 1 + 8 * (t - 1), 8 * w, 8 * h)
    return latents, cams, plucker
