"""Exponential moving average of a model's parameters (fp32 shadow copy).

``shadow ← decay · shadow + (1 − decay) · param`` after every optimiser step, with the usual warm-up
``decay_t = min(decay, (1 + t) / (10 + t))`` so early averages are not dominated by the initialisation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class EMA:
    """Shadow parameters of ``model`` (floating-point parameters only), kept in float32."""

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.shadow: dict[str, torch.Tensor] = {
            name: p.detach().float().clone() for name, p in model.named_parameters() if p.dtype.is_floating_point
        }

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        for name, p in model.named_parameters():
            s = self.shadow.get(name)
            if s is not None:
                s.lerp_(p.detach().to(s.device, torch.float32), 1.0 - d)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Write the averaged weights into ``model`` (cast to each parameter's dtype)."""
        for name, p in model.named_parameters():
            if name in self.shadow:
                p.copy_(self.shadow[name].to(p.device, p.dtype))

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        for name, t in state["shadow"].items():
            if name in self.shadow:
                self.shadow[name].copy_(t)
