"""CPU vs CUDA: the same seed gives the same world and (to float rounding) the same images."""

import pytest
import torch

from lyra.world import make_example, render, sample_world

pytestmark = pytest.mark.gpu
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@cuda
def test_same_scene_params_and_render_on_cuda():
    ws = sample_world(1001, "micro")  # generated on the CPU, on every machine
    gpu_scene = ws.scene.to("cuda")
    for name, t in ws.scene.tensors().items():
        assert torch.equal(getattr(gpu_scene, name).cpu(), t), name
    cpu = render(ws.scene, ws.cameras)
    gpu = render(ws.scene, ws.cameras, device="cuda")
    d_cpu, d_gpu = cpu.depth, gpu.depth.cpu()
    both = torch.isfinite(d_cpu) & torch.isfinite(d_gpu)
    assert torch.equal(torch.isfinite(d_cpu), torch.isfinite(d_gpu)) or (both.float().mean() > 0.999)
    rel = ((d_cpu[both] - d_gpu[both]).abs() / d_cpu[both])
    assert (rel < 1e-4).float().mean() > 0.999
    assert (cpu.ids == gpu.ids.cpu()).float().mean() > 0.999
    assert (cpu.rgb - gpu.rgb.cpu()).abs().mean() < 2e-3


@cuda
def test_make_example_cuda_matches_cpu():
    a = make_example(7, "micro")
    b = make_example(7, "micro", device="cuda")
    assert b.videos.is_cuda and a.center_depth == b.center_depth
    assert torch.equal(a.cameras.c2w, b.cameras.c2w.cpu())
    assert (a.videos - b.videos.cpu()).abs().mean() < 2e-3
