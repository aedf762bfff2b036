"""lyra.lowmem: stage residency of models, the stage meter, and live-tensor accounting."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lyra.lowmem import LiveTensorBytes, StageMeter, fused_attention_on_meta, park, resident


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.tied = self.lin  # a module reachable twice: its tensors move once
        self.register_buffer("scale", torch.full((3,), 2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * self.scale


def test_resident_moves_for_the_block_and_restores_the_originals():
    net = Net()
    ptrs = (net.lin.weight.data_ptr(), net.lin.bias.data_ptr())
    buf = net.scale
    params = list(net.parameters())
    with resident(net, "meta") as moved:
        assert all(p.device.type == "meta" for p in net.parameters()) and net.scale.device.type == "meta"
        assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
        assert net.tied.weight is net.lin.weight  # moved once
        assert moved.bytes == (12 + 3 + 3) * 4 and moved.seconds >= 0
        assert net(torch.ones(2, 4, device="meta")).shape == (2, 3)
    assert list(net.parameters()) == params  # the original objects are back, with their data: no copy back
    assert (net.lin.weight.data_ptr(), net.lin.bias.data_ptr()) == ptrs and net.scale is buf
    assert torch.equal(net(torch.ones(1, 4)), (net.lin(torch.ones(1, 4)) * 2.0))


def test_resident_is_a_no_op_without_a_target_or_a_module_and_restores_on_errors():
    net = Net()
    for module, device in ((net, None), (object(), "meta"), (None, "meta"), (net, "cpu")):
        with resident(module, device) as moved:
            assert moved.bytes == 0
    with pytest.raises(RuntimeError, match="boom"), resident(net, "meta"):
        raise RuntimeError("boom")
    assert net.lin.weight.device.type == "cpu" and net.scale.device.type == "cpu"


def test_park_moves_modules_and_skips_others():
    net = Net()
    park(net, None, "not a module", device="meta")
    assert net.lin.weight.device.type == "meta" and net.scale.device.type == "meta"


def test_stage_meter_on_the_cpu_records_seconds_only():
    meter = StageMeter(torch.device("cpu"))
    with meter.stage("a"):
        torch.ones(10).sum()
    with meter.stage("a"):  # a repeated stage adds up
        pass
    with meter.stage("b"):
        pass
    assert list(meter.seconds) == ["a", "b"] and all(v >= 0 for v in meter.seconds.values())
    assert meter.peak_gib() is None and meter.peak_bytes == {}


def test_live_tensor_bytes_counts_live_storages_not_views_or_ignored():
    w = torch.ones(1000)
    with LiveTensorBytes(ignore=[w]) as live:
        a = torch.ones(1000, 1000)  # 4 MB
        b = a * 2  # 8 MB live
        v = b[:10]  # a view: free
        u = w[:5] + 0  # 20 bytes; w itself is ignored
        del a  # 4 MB + 20 B
        c = b + 1  # 8 MB
        del b, v  # c alone
    assert live.peak == 8_000_000 + 20 and live.largest == 4_000_000
    assert live.live == 4_000_000 + 20
    del c, u


def test_live_tensor_bytes_on_meta_and_fused_attention():
    q = torch.empty(1, 2, 4096, 64, device="meta")
    with LiveTensorBytes(ignore=[q]) as plain:
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
    with fused_attention_on_meta(), LiveTensorBytes(ignore=[q]) as fused:
        out = torch.nn.functional.scaled_dot_product_attention(q, q, q)
    assert out.shape == q.shape
    assert fused.peak == q.numel() * 4  # the output only
    assert plain.peak >= 2 * 4096 * 4096 * 4  # the math path's score matrix (2 heads)
    big = torch.empty(1, 1, 64, 512, device="meta")  # a 512-wide head: no fused kernel, math path kept
    with fused_attention_on_meta(), LiveTensorBytes(ignore=[big]) as wide:
        torch.nn.functional.scaled_dot_product_attention(big, big, big)
    assert wide.peak > big.numel() * 4
