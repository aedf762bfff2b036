"""Rectified-flow objective and Euler sampler for the teacher (normalised latent space).

Why rectified flow rather than Cosmos' EDM: the tiny teacher has to sample six trajectories on two
CPU cores in seconds, i.e. with few network evaluations. Rectified flow (flow matching with the
straight path ``x_t = (1 − t)·x_0 + t·ε``) trains the network to predict the constant velocity
``v = ε − x_0`` of that path; its ODE trajectories are nearly straight, so a plain Euler solver
with a handful of uniform steps is accurate, whereas EDM needs a tuned σ-schedule and a
second-order (Heun) solver — twice the evaluations per step — to reach comparable quality at low
step counts. The objective is a plain MSE with no per-σ loss weighting or preconditioning to tune,
and with an oracle velocity one Euler step is already exact (tested). ``t = 0`` is data, ``t = 1``
is noise; the normalised latents have std ≈ 0.5 (Cosmos' ``sigma_data``), the noise std 1.

Time sampling during training: logit-normal ``t = sigmoid(n)``, ``n ~ N(0, 1)`` (Esser et al. 2024,
"Scaling Rectified Flow Transformers"), which puts more weight on the middle of the path.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from lyra.errors import ConfigError
from lyra.teacher.conditioning import Conditions

__all__ = ["euler_path", "flow_matching_loss", "interpolate", "sample", "sample_times", "secant_distillation_loss",
           "time_grid"]

#: A velocity model: ``(x_t [B,16,t,h,w], t [B], conditions) -> v [B,16,t,h,w]``.
Velocity = Callable[[Tensor, Tensor, Conditions], Tensor] | nn.Module


def interpolate(clean: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    """The straight path ``x_t = (1 − t)·clean + t·noise``; ``t`` ``[B]`` broadcast over the rest."""
    tt = t.reshape(-1, *([1] * (clean.dim() - 1))).to(clean.dtype)
    return (1.0 - tt) * clean + tt * noise


def sample_times(batch: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> Tensor:
    """Training times ``[batch]`` in (0, 1), logit-normal (``sigmoid`` of a standard normal)."""
    n = torch.randn(batch, generator=generator, device=generator.device if generator is not None else device)
    return torch.sigmoid(n).to(device)


def flow_matching_loss(
    denoiser: Velocity,
    clean_latents: Tensor,
    conditions: Conditions,
    generator: torch.Generator | None = None,
    t: Tensor | None = None,
) -> Tensor:
    """Rectified-flow loss: ``mean((v_θ(x_t, t) − (ε − x_0))²)`` over all elements (of the channels the denoiser
    generates, its ``generated_channels`` where it has them).

    Args:
        denoiser: velocity model (e.g. :class:`~lyra.teacher.denoiser.TeacherDenoiser`).
        clean_latents: ``x_0`` ``[B, C, t, h, w]`` normalised target latents.
        conditions: the ``B`` trajectories' conditions.
        generator: draws the noise ``ε`` and (unless ``t`` is given) the times; on the latents'
            device or the CPU (then moved).
        t: optional times ``[B]`` in ``[0, 1]``.

    Returns:
        the scalar loss (float32).
    """
    B = clean_latents.shape[0]
    if len(conditions) != B:
        raise ValueError(f"{len(conditions)} conditions for {B} latent videos")
    gdev = generator.device if generator is not None else clean_latents.device
    noise = torch.randn(clean_latents.shape, generator=generator, device=gdev).to(clean_latents)
    if t is None:
        t = sample_times(B, generator, gdev)
    t = t.to(device=clean_latents.device, dtype=torch.float32).reshape(B)
    x_t = interpolate(clean_latents, noise, t)
    target = noise - clean_latents
    pred = denoiser(x_t, t, conditions)
    k = getattr(denoiser, "generated_channels", None)
    if k is not None and k < clean_latents.shape[1]:  # the other channels follow the anchor: no parameter in them
        pred, target = pred[:, :k], target[:, :k]
    return torch.mean((pred.float() - target.float()) ** 2)


def time_grid(steps: int, device: torch.device | str = "cpu") -> Tensor:
    """``steps + 1`` uniform times from 1 (noise) to 0 (data)."""
    if steps < 1:
        raise ConfigError(f"the sampler needs at least 1 step, got {steps}")
    return torch.linspace(1.0, 0.0, steps + 1, device=device)


@torch.no_grad()
def sample(
    denoiser: Velocity,
    conditions: Conditions,
    steps: int = 35,
    guidance: float = 1.0,
    generator: torch.Generator | None = None,
    noise: Tensor | None = None,
    progress: bool = True,
) -> Tensor:
    """Integrate ``dx/dt = v(x, t)`` from noise at ``t = 1`` to data at ``t = 0`` with Euler steps.

    Args:
        denoiser: velocity model.
        conditions: ``V`` trajectories' conditions (all sampled as one batch).
        steps: Euler steps (uniform in ``t``; the GEN3C/Cosmos default count is 35).
        guidance: classifier-free guidance scale ``w``: ``v = v_u + w·(v_c − v_u)``, ``v_u`` with the
            warp conditions blanked (zero latents and mask). ``1.0`` (the default, as in GEN3C)
            evaluates the conditional model only.
        generator: draws the starting noise (same seed → same result).
        noise: optional starting noise ``[V, C, t, h, w]`` (overrides ``generator``).
        progress: show a tqdm bar.

    Returns:
        normalised latents ``[V, C, t, h, w]`` (float32), on the conditions' device.
    """
    cond_lat = conditions.latents
    if noise is None:
        gdev = generator.device if generator is not None else cond_lat.device
        noise = torch.randn(cond_lat.shape, generator=generator, device=gdev)
    if tuple(noise.shape) != tuple(cond_lat.shape):
        raise ValueError(f"noise {tuple(noise.shape)} does not match the conditions {tuple(cond_lat.shape)}")
    x = noise.to(device=cond_lat.device, dtype=torch.float32)
    V = x.shape[0]
    blank = None
    if guidance != 1.0:
        blank = Conditions(torch.zeros_like(cond_lat), torch.zeros_like(conditions.mask_latents))
    ts = time_grid(steps, x.device)
    for i in tqdm(range(steps), desc="teacher", disable=not progress, leave=False):
        t, t_next = ts[i], ts[i + 1]
        tb = t.expand(V)
        v = denoiser(x, tb, conditions).float()
        if blank is not None:
            v_u = denoiser(x, tb, blank).float()
            v = v_u + guidance * (v - v_u)
        x = x + (t_next - t) * v
    return x


@torch.no_grad()
def euler_path(denoiser: Velocity, conditions: Conditions, steps: int, noise: Tensor, every: int = 1) -> list[Tensor]:
    """The states of :func:`sample` (``steps`` uniform Euler steps from ``noise`` at ``t = 1``), at every ``every``-th
    grid time: ``steps / every + 1`` tensors ``[V, C, t, h, w]`` at ``t = 1, 1 − every/steps, …, 0`` (float32)."""
    if steps < 1 or every < 1 or steps % every:
        raise ConfigError(f"{steps} Euler steps cannot be cut into segments of {every}")
    x = noise.to(device=conditions.latents.device, dtype=torch.float32)
    V = x.shape[0]
    ts = time_grid(steps, x.device)
    states = [x]
    for i in range(steps):
        x = x + (ts[i + 1] - ts[i]) * denoiser(x, ts[i].expand(V), conditions).float()
        if (i + 1) % every == 0:
            states.append(x)
    return states


def secant_distillation_loss(student: Velocity, teacher: Velocity, conditions: Conditions, noise: Tensor,
                             steps: int = 4, teacher_steps: int = 32) -> Tensor:
    """Few-step distillation: the student's Euler steps learn to land where the teacher's many steps land.

    The frozen ``teacher`` integrates ``teacher_steps`` Euler steps from ``noise`` (:func:`euler_path`); its states
    ``x_k`` at the ``steps + 1`` coarse times ``t_k = 1 − k/steps`` are kept. The student's velocity at ``(x_k, t_k)``
    is regressed onto the secant ``(x_{k+1} − x_k) / (t_{k+1} − t_k)``, for every ``k``: a student that fits it
    reproduces the teacher's ``teacher_steps``-step result with ``steps`` evaluations, from the same noise. The path
    is deterministic given the noise, so the target is a function of the student's input, not an average over
    outcomes (which would blur). Returns the mean squared error over all segments and elements (float32).
    """
    if teacher_steps % steps:
        raise ConfigError(f"teacher_steps ({teacher_steps}) must be a multiple of steps ({steps})")
    path = euler_path(teacher, conditions, teacher_steps, noise, every=teacher_steps // steps)
    ts = time_grid(steps, path[0].device)
    V = path[0].shape[0]
    losses = []
    for k in range(steps):
        target = (path[k + 1] - path[k]) / (ts[k + 1] - ts[k])
        pred = student(path[k], ts[k].expand(V), conditions)
        losses.append(torch.mean((pred.float() - target) ** 2))
    return torch.stack(losses).mean()
