import pytest
import torch

from lyra.world.scene import Scene
from tests.world.world_helpers import primitives_scene


@pytest.fixture(autouse=True)
def one_thread():
    """World tests run single-threaded: on a busy shared machine, OpenMP threads that spin-wait for each
    other make small renders up to 25x slower; one thread keeps the suite's time predictable."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def prim_scene() -> Scene:
    return primitives_scene()
