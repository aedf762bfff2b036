"""The optional torch.compile path (LYRA_WORLD_COMPILE=cpu) renders what eager torch renders."""

import pytest
import torch

from lyra.world.render import render
from tests.world.world_helpers import camera


@pytest.mark.slow
def test_compiled_kernels_match_eager(prim_scene, monkeypatch):
    cam = camera(width=64, height=48)
    eager = render(prim_scene, cam)
    monkeypatch.setenv("LYRA_WORLD_COMPILE", "cpu")
    with _no_fallback():
        compiled = render(prim_scene, cam)
    fin = torch.isfinite(eager.depth)
    assert torch.equal(fin, torch.isfinite(compiled.depth))
    assert torch.allclose(compiled.depth[fin], eager.depth[fin], rtol=1e-5)
    assert (compiled.ids == eager.ids).float().mean() > 0.999
    assert (compiled.rgb - eager.rgb).abs().max() < 1e-3


class _no_fallback:
    """Fail if the compiled path fell back to eager (it warns RuntimeWarning when it does)."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings(record=True)
        self._log = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        fell_back = [w for w in self._log if "torch.compile unavailable" in str(w.message)]
        assert not fell_back, fell_back[0].message
        return False
