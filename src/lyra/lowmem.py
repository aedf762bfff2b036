"""Running paper-scale models in little GPU memory: each model on the GPU only while its stage runs.

* :func:`resident` — a context manager that puts a module's weights on the execution device for one stage
  and drops them again afterwards. The module's own tensors stay where they are "parked" (the CPU); the
  device copies are temporary, so leaving a stage costs no copy back (inference only: changes made to the
  weights or buffers inside the block are lost).
* :class:`StageMeter` — seconds (CUDA-synchronised) and peak GPU memory (``torch.cuda.max_memory_allocated``,
  reset at every stage start) per named stage, plus the peak of the whole run (stages and the gaps between
  them).
* :class:`LiveTensorBytes` — the peak bytes of live tensors of a computation, counted operation by operation
  through a ``TorchDispatchMode``. It works on CPU and **meta** tensors, so it estimates the activation memory of
  a paper-scale model without memory or a GPU (what the CUDA caching allocator would count, less kernel
  workspaces and rounding). :func:`fused_attention_on_meta` makes meta-device attention allocate what a fused
  (flash / memory-efficient) kernel does instead of the full score matrix.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["LiveTensorBytes", "Residency", "StageMeter", "fused_attention_on_meta", "park", "resident"]

GIB = float(1 << 30)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _empty_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


@dataclass
class Residency:
    """What :func:`resident` moved: ``bytes`` copied to the device and the ``seconds`` it took (synchronised)."""

    bytes: int = 0
    seconds: float = 0.0


def _module_device(module: nn.Module) -> torch.device | None:
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return None


@contextlib.contextmanager
def resident(module: Any, device: torch.device | str | None) -> Iterator[Residency]:
    """Put ``module``'s parameters and buffers on ``device`` for the ``with`` block, then restore the originals.

    Inside the block every parameter (buffer) not yet on ``device`` is replaced in its module by a copy on
    ``device`` (a tensor shared by several modules is copied once); on exit the original objects are put back
    and the copies dropped — nothing is copied back, so changes made inside the block are lost (inference).
    On CUDA the caching allocator's free blocks are then returned (``torch.cuda.empty_cache``), so the next
    stage starts clean. A no-op (an empty :class:`Residency`) when ``module`` is not an ``nn.Module`` or
    ``device`` is ``None``, and for tensors already on ``device``.
    """
    info = Residency()
    if not isinstance(module, nn.Module) or device is None:
        yield info
        return
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    saved: list[tuple[dict[str, Any], str, Any]] = []
    copies: dict[int, Tensor] = {}
    t0 = time.perf_counter()
    try:
        for m in module.modules():
            for store in (m._parameters, m._buffers):
                for name, t in store.items():
                    if t is None or t.device == device:
                        continue
                    copy = copies.get(id(t))
                    if copy is None:
                        data = t.detach().to(device, non_blocking=t.is_pinned())
                        copy = nn.Parameter(data, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) \
                            else data
                        copies[id(t)] = copy
                        info.bytes += t.numel() * t.element_size()
                    saved.append((store, name, t))
                    store[name] = copy
        _sync(device)
        info.seconds = time.perf_counter() - t0
        yield info
    finally:
        for store, name, original in reversed(saved):
            store[name] = original
        copies.clear()
        if saved:
            _empty_cache(device)


def park(*modules: Any, device: torch.device | str = "cpu") -> None:
    """Move modules (``nn.Module``; others are skipped) to ``device`` (the CPU) and free the CUDA cache."""
    moved = False
    for m in modules:
        if isinstance(m, nn.Module) and _module_device(m) not in (None, torch.device(device)):
            m.to(device)
            moved = True
    if moved and torch.cuda.is_available():
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------------ stage meter
@dataclass
class StageMeter:
    """Seconds and peak GPU memory per named stage (see the module doc).

    ``with meter.stage("denoise"): ...`` adds the stage's seconds to :attr:`seconds` and, on CUDA with ``memory``,
    its peak allocated bytes to :attr:`peak_bytes`; :attr:`run_peak_bytes` also covers the gaps between stages (from
    the meter's creation). Measuring memory resets CUDA's peak counter (``torch.cuda.reset_peak_memory_stats``) at
    every stage boundary, which disturbs an outer measurement: hence ``memory`` (default on). On the CPU only seconds
    are recorded. Nested stages are not supported.
    """

    device: torch.device
    memory: bool = True
    seconds: dict[str, float] = field(default_factory=dict)
    peak_bytes: dict[str, int] = field(default_factory=dict)
    run_peak_bytes: int = 0

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        if self.cuda:
            _sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    @property
    def cuda(self) -> bool:
        """Whether GPU memory is measured (a CUDA device and ``memory``)."""
        return self.memory and self.device.type == "cuda"

    def _fold(self) -> int:
        """Peak since the last reset, folded into the run's peak; resets the counter."""
        peak = int(torch.cuda.max_memory_allocated(self.device))
        self.run_peak_bytes = max(self.run_peak_bytes, peak)
        torch.cuda.reset_peak_memory_stats(self.device)
        return peak

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.cuda:
            _sync(self.device)
            self._fold()  # the gap before this stage
        t0 = time.perf_counter()
        try:
            yield
        finally:
            _sync(self.device)  # a no-op on the CPU
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
            if self.cuda:
                self.peak_bytes[name] = max(self.peak_bytes.get(name, 0), self._fold())

    def finish(self) -> None:
        """Fold the gap after the last stage into :attr:`run_peak_bytes`."""
        if self.cuda:
            _sync(self.device)
            self._fold()

    def peak_gib(self) -> dict[str, float] | None:
        """``{stage: GiB, ..., "run": GiB}`` when measuring GPU memory, else ``None``."""
        if not self.cuda:
            return None
        self.finish()
        out = {k: round(v / GIB, 4) for k, v in self.peak_bytes.items()}
        out["run"] = round(self.run_peak_bytes / GIB, 4)
        return out


# ------------------------------------------------------------------------------------------ live bytes
class LiveTensorBytes(TorchDispatchMode):
    """Peak bytes of the tensors alive during a computation, counted op by op (CPU or meta tensors).

    Every tensor an operation returns is tracked by its storage; a storage counts from its first appearance
    until the last tracked tensor object on it is garbage-collected. Storages of ``ignore`` (weights, inputs)
    are not counted. Views share their base's storage and cost nothing. Intended for ``torch.no_grad()``
    computations (autograd graphs keep tensors alive that Python does not see).

    Attributes: ``peak`` and ``live`` (bytes), ``largest`` (bytes of the largest storage seen).
    """

    def __init__(self, ignore: Iterable[Tensor] = ()) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self.largest = 0
        self._groups: dict[int, list[int]] = {}  # storage address -> [tensor objects, bytes]
        self._tensors: set[int] = set()
        self._ignore = {t.untyped_storage()._cdata for t in ignore}

    def _release(self, key: int, tid: int) -> None:
        self._tensors.discard(tid)
        group = self._groups.get(key)
        if group is None:
            return
        group[0] -= 1
        if group[0] == 0:
            self.live -= group[1]
            del self._groups[key]

    def _register(self, t: Tensor) -> None:
        if id(t) in self._tensors:
            return
        storage = t.untyped_storage()
        key = storage._cdata
        if key in self._ignore:
            return
        if key in self._groups:
            self._groups[key][0] += 1
        else:
            nbytes = int(storage.nbytes())
            self._groups[key] = [1, nbytes]
            self.live += nbytes
            self.largest = max(self.largest, nbytes)
            self.peak = max(self.peak, self.live)
        self._tensors.add(id(t))
        weakref.finalize(t, self._release, key, id(t))

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, Tensor):
                self._register(t)
        return out


@contextlib.contextmanager
def fused_attention_on_meta(max_head_dim: int = 256) -> Iterator[None]:
    """While active, ``F.scaled_dot_product_attention`` on meta tensors without a mask and with head dim
    ≤ ``max_head_dim`` (what flash / cuDNN attention take) only allocates its output, as a fused kernel does;
    other calls (masks, wider heads: the plain math path on the GPU too) decompose as usual."""
    original: Callable[..., Tensor] = F.scaled_dot_product_attention

    def sdpa(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None, dropout_p: float = 0.0,
             is_causal: bool = False, scale: float | None = None, enable_gqa: bool = False) -> Tensor:
        if query.device.type == "meta" and attn_mask is None and query.shape[-1] <= max_head_dim:
            return query.new_empty(*query.shape[:-1], value.shape[-1])
        return original(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal,
                        scale=scale, enable_gqa=enable_gqa)

    F.scaled_dot_product_attention = sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original
