import pytest
import torch

from lyra.gaussians import Gaussians


def make_scene(n: int = 400, seed: int = 0) -> Gaussians:
    """A small random scene in front of the origin camera (z in [2, 4])."""
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=g) * torch.tensor([2.0, 1.2, 2.0]) - torch.tensor([1.0, 0.6, -2.0])
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    scales = 0.02 + 0.05 * torch.rand(n, 3, generator=g)
    opac = 0.2 + 0.79 * torch.rand(n, generator=g)
    colors = torch.rand(n, 3, generator=g)
    return Gaussians(means, quats, scales, opac, colors)


@pytest.fixture
def scene() -> Gaussians:
    return make_scene()
