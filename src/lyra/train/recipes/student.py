"""Self-distillation of the student on SDG shards: ``python -m lyra.train.recipes.student`` / ``lyra train student``.

Data: an SDG folder (:class:`~lyra.shards.ShardDataset`): per sample the teacher's raw latents
``[6, C, t, h, w]`` (``C`` the tokenizer's latent channels, 16 for the Cosmos tokenizer; the decoder's
``latent_channels`` must match), its tokenizer-decoded frames ``[6, T, H, W, 3]`` (the targets), the cameras and a
depth estimate of the decoded frames. Each step (:class:`SampleStream`): a batch of samples in a seeded per-epoch
order, the stage of the step (:mod:`lyra.distill.stages`), and the stage's random choices — which
trajectories, which target frames — drawn from the *global* micro-batch index, so that every process makes
the same choices and ``N`` GPUs × batch ``b`` see what 1 GPU × batch ``N·b`` sees.

Step (:class:`StudentObjective`): Plücker latents of the cameras through the frozen tokenizer
(:func:`lyra.student.plucker_latents`, cached per sample id in fp16 — the cache changes nothing in the values);
the decoder over the selected trajectories (or, with ``--single-view``, over each trajectory alone, the
Gaussians merged); the Gaussians (pruned in pruning stages); :func:`lyra.render.render` (gsplat on CUDA,
the torch reference on CPU; always in fp32) at the target frames, at the stage's resolution, white background;
the losses of :mod:`lyra.distill.losses` against the decoded frames and their depth.

On ``accelerate``: bf16 autocast on CUDA, DDP / FSDP / DeepSpeed ZeRO-2 through
``accelerate launch --config_file configs/accelerate/<ddp|fsdp|deepspeed_zero2>.yaml -m lyra.train.recipes.student …``;
exact resume (also on another number of processes with the same global batch); a time budget; EMA.
Exports the decoder (fp16 safetensors) + ``student.json`` + ``training_record.json`` to ``--export-to``
(default ``OUT/export``); :meth:`lyra.student.LatentDecoder.from_pretrained` reads it back.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset, default_collate

from lyra.distill.losses import LOSS_NAMES, LossWeights, PerceptualLoss, student_losses
from lyra.distill.stages import Stage, StagePlan, load_stages, sample_frames, sample_views
from lyra.errors import ConfigError, OutputPathError
from lyra.geometry import Cameras
from lyra.seeds import mix_seed
from lyra.student import DecoderConfig, LatentDecoder, decoder_config
from lyra.student.latents import LatentCache
from lyra.student.pretrained import CONFIG_NAME
from lyra.train import Trainer
from lyra.train.recipe import export_and_test, export_due, final_weights, fit, start_run, training_record
from lyra.train.runtime import add_optimizer_arguments, add_run_arguments, training_main

__all__ = ["SampleStream", "StudentModel", "StudentObjective", "StudentTrainer", "ablate", "default_stages",
           "main", "pack_cameras", "run", "unpack_cameras"]

#: Stage list used when ``--stages`` is not given.
DEFAULT_STAGES_FILE = "configs/student_tiny.json"
#: ... and with ``--dynamic``.
DEFAULT_DYNAMIC_STAGES_FILE = "configs/student_tiny_dynamic.json"


# ---------------------------------------------------------------------------------------- stages
def default_stages() -> StagePlan:
    """``configs/student_tiny.json`` when run from a checkout, else the same list built in (fractions of the
    run: 40 % all six trajectories, 35 % 1–6 trajectories with end-weighted frames, 25 % + opacity and
    pruning to 20 %)."""
    path = Path(__file__).resolve().parents[4] / DEFAULT_STAGES_FILE
    if path.is_file():
        return load_stages(path)
    return StagePlan([
        Stage("all_trajectories", 0.4, target_frames=4),
        Stage("multi_trajectory", 0.75, views=(1, 6), target_frames=4, end_weight=2.0),
        Stage("prune", 1.0, views=(1, 6), losses=("mse", "perceptual", "depth", "opacity"), prune_ratio=0.8,
              target_frames=4, end_weight=2.0),
    ])


def default_dynamic_stages() -> StagePlan:
    """``configs/student_tiny_dynamic.json`` when run from a checkout, else the same list built in (Lyra's last two
    stages: 80 % dynamic, 20 % dynamic + opacity and pruning to 20 %; six trajectories of one direction in,
    two target times per step)."""
    path = Path(__file__).resolve().parents[4] / DEFAULT_DYNAMIC_STAGES_FILE
    if path.is_file():
        return load_stages(path)
    return StagePlan([
        Stage("dynamic", 0.8, views=6, target_frames=2),
        Stage("dynamic_prune", 1.0, views=6, losses=("mse", "perceptual", "depth", "opacity"), prune_ratio=0.8,
              target_frames=2),
    ])


def ablate(plan: StagePlan, no_depth: bool = False, no_prune: bool = False) -> StagePlan:
    """The plan without the depth term (``no_depth``) and/or without pruning and the opacity term (``no_prune``)."""
    from dataclasses import replace

    out = []
    for s in plan.stages:
        losses = tuple(t for t in s.losses if not (no_depth and t == "depth") and not (no_prune and t == "opacity"))
        out.append(replace(s, losses=losses or ("mse",), prune_ratio=None if no_prune else s.prune_ratio))
    return StagePlan(out)


# ---------------------------------------------------------------------------------------- data
class SampleStream:
    """Endless batches of a map-style SDG dataset, sharded over processes, with a restorable position.

    Global micro-batch ``g`` holds the samples at positions ``s_g … s_g + b·W − 1`` of the endless sequence
    ``perm_0 ‖ perm_1 ‖ …`` (``perm_e``: a permutation seeded by ``seed + e``; ``b`` = per-process batch,
    ``W`` = processes); process ``r`` takes ``s_g + r·b … s_g + (r + 1)·b − 1``. The state is ``g`` and the
    samples consumed in all, so a run resumes exactly, also on another number of processes (with another
    ``b·W`` the run continues at the first unconsumed sample).

    Every batch is a dict: the collated dataset items plus ``stage`` (index into the plan), ``views``
    ``[V']`` and ``frames`` ``[V', F]`` (target frame indices per selected trajectory), drawn from a generator
    seeded by ``(seed, g)`` — the same on every process. The stage is that of optimiser step ``g // grad_accum``.

    Dynamic data (``dynamic=True``): ``views`` are drawn among the ``S`` trajectories of one direction
    (``S`` = the shard's trajectories / its number of directions), ``frames`` ``[V', k]`` repeats one row of
    ``k`` target frame indices (the stage's ``target_frames``, end-weighted, among the stage's ``frames``), and
    ``direction`` (0 forward, 1 reversed: uniform when ``motion_reversal``, else 0) is added; see
    :meth:`StudentObjective.dynamic_step`.
    """

    def __init__(self, dataset: Dataset, batch_size: int, plan: StagePlan, total_steps: Callable[[], int],
                 seed: int = 0, grad_accum: int = 1, process_index: int = 0, num_processes: int = 1,
                 dynamic: bool = False, directions: Sequence[str] = ("forward",),
                 motion_reversal: bool = True) -> None:
        if batch_size < 1:
            raise ConfigError("batch_size must be >= 1")
        if len(dataset) == 0:  # type: ignore[arg-type]
            raise ConfigError("the SDG data set holds no samples")
        self.dataset = dataset
        self.batch_size = batch_size
        self.plan = plan
        self.total_steps = total_steps
        self.seed = seed
        self.grad_accum = grad_accum
        self.process_index = process_index
        self.num_processes = num_processes
        self.micro_batch = 0
        self.samples = 0
        self._perm: tuple[int, list[int]] | None = None
        first = dataset[0]
        self.num_views, self.num_frames = int(first["rgb"].shape[0]), int(first["rgb"].shape[1])
        self.dynamic = dynamic
        self.motion_reversal = bool(dynamic and motion_reversal and "reversed" in directions)
        #: trajectories the stages choose among: all of them, or (dynamic) those of one direction
        self.num_trajectories = self.num_views // len(directions) if dynamic else self.num_views

    def set_shard(self, process_index: int, num_processes: int) -> None:
        self.process_index, self.num_processes = process_index, num_processes

    def _item_index(self, position: int) -> int:
        n = len(self.dataset)  # type: ignore[arg-type]
        epoch, k = divmod(position, n)
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, 23))
            self._perm = (epoch, torch.randperm(n, generator=g).tolist())
        return self._perm[1][k]

    def choices(self, micro_batch: int) -> tuple[int, Tensor, Tensor]:
        """``(stage index, views [V'], frames [V', F])`` of global micro-batch ``micro_batch``."""
        step = micro_batch // self.grad_accum
        stage = self.plan.at(step, self.total_steps())
        index = self.plan.stages.index(stage)
        g = torch.Generator().manual_seed(mix_seed(self.seed, micro_batch, 29))
        views = sample_views(stage, self.num_trajectories, g)
        frames_used = stage.frames or self.num_frames
        if frames_used > self.num_frames:
            raise ConfigError(f"stage {stage.name!r} asks for {frames_used} frames; the shards hold {self.num_frames}")
        if self.dynamic:  # one row of target frames (target times), shared by the views
            return index, views, sample_frames(stage, frames_used, 1, g).expand(len(views), -1).clone()
        return index, views, sample_frames(stage, frames_used, len(views), g)

    def direction(self, micro_batch: int) -> int:
        """The input direction of global micro-batch ``micro_batch`` (dynamic data; 0 without motion reversal)."""
        if not self.motion_reversal:
            return 0
        g = torch.Generator().manual_seed(mix_seed(self.seed, micro_batch, 31))
        return int(torch.randint(2, (1,), generator=g))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            start = self.samples + self.process_index * self.batch_size
            items = [self.dataset[self._item_index(start + i)] for i in range(self.batch_size)]
            batch = default_collate(items)
            stage, views, frames = self.choices(self.micro_batch)
            batch.update(stage=stage, views=views, frames=frames)
            if self.dynamic:
                batch["direction"] = self.direction(self.micro_batch)
            self.micro_batch += 1
            self.samples += self.batch_size * self.num_processes
            yield batch

    def state_dict(self) -> dict[str, Any]:
        return {"micro_batch": self.micro_batch, "samples": self.samples, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.micro_batch = int(state["micro_batch"])
        self.samples = int(state["samples"])
        self.seed = int(state.get("seed", self.seed))


# ---------------------------------------------------------------------------------------- objective
def _module_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        return p.dtype
    return torch.float32


def stored_plucker_usable(settings: dict[str, Any], tokenizer: str) -> bool:
    """Whether the Plücker latents an SDG folder stored (``settings["plucker"] == "stored"``) were made by the
    tokenizer ``tokenizer`` (a preset name) that this training uses: its weights' sha256 must match the SDG's."""
    if settings.get("plucker") != "stored":
        return False
    from lyra.tokenizer.tokenizer import preset_weights_path
    from lyra.weights.hub import weights_digest

    folder = preset_weights_path(tokenizer)
    if folder is None or not folder.exists():
        return False
    return weights_digest(folder) == (settings.get("weights") or {}).get("tokenizer")


class StudentModel(nn.Module):
    """The decoder as the trainer holds it (``.decoder``: the :class:`~lyra.student.LatentDecoder`).

    ``forward(latents [B, V, C, t, h, w], plucker [B, V, 2C, t, h, w], camera_bits [B, V, T, 25] int32,
    width, height, time_latents=None, target_time_latents=None) -> raw [B, N, 14]`` (the time latents of dynamic
    scenes: ``[B, V, C, t, h, w]`` and ``[B, 1, C, t, h, w]``, see :mod:`lyra.student.dynamic`). The cameras
    travel as the int32 bit patterns of their float32 ``K`` (9 values) and ``c2w`` (16 values)
    (:func:`pack_cameras`): FSDP's mixed precision casts every
    floating-point input of the root module to bf16, which would move the rays (and so every Gaussian) by
    up to 0.4 %; integer tensors pass untouched, and the unpacking is exact.
    """

    def __init__(self, decoder: LatentDecoder) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, latents: Tensor, plucker: Tensor, camera_bits: Tensor, width: int, height: int,
                time_latents: Tensor | None = None, target_time_latents: Tensor | None = None) -> Tensor:
        return self.decoder(latents, unpack_cameras(camera_bits, width, height), plucker, time_latents,
                            target_time_latents)


def pack_cameras(cameras: Cameras) -> Tensor:
    """``Cameras`` ``[...]`` → int32 ``[..., 25]``: the float32 bits of ``K`` (row-major) then ``c2w``."""
    flat = torch.cat([cameras.K.float().flatten(-2), cameras.c2w.float().flatten(-2)], -1).contiguous()
    return flat.view(torch.int32)


def unpack_cameras(bits: Tensor, width: int, height: int) -> Cameras:
    """Inverse of :func:`pack_cameras` (bit-exact)."""
    f = bits.contiguous().view(torch.float32)
    return Cameras(f[..., :9].unflatten(-1, (3, 3)), f[..., 9:].unflatten(-1, (4, 4)), width, height)


class StudentObjective:
    """``objective(model, batch) -> (loss, metrics)`` for :class:`~lyra.train.Trainer` (module docstring).

    Args:
        plan: the stage list (the batch names the stage by index).
        encoder: the frozen tokenizer (for the Plücker latents).
        perceptual: the perceptual term (LPIPS or SSIM).
        weights: loss weights.
        single_view: decode each trajectory alone and merge the Gaussians (the "w/o multi-view fusion" ablation).
        backend: render backend (``auto``: gsplat on CUDA, torch on CPU).
        cache_entries: Plücker cache size in samples.
        dynamic: dynamic SDG data: the step of :meth:`dynamic_step` (time latents, target times).
        directions: the data's trajectory layout (``["forward"]`` or ``["forward", "reversed"]``).
        motion_reversal: with reversed data, supervise with the frames of both directions (else forward only).
    """

    def __init__(self, plan: StagePlan, encoder: Any, perceptual: PerceptualLoss, weights: LossWeights | None = None,
                 single_view: bool = False, backend: str = "auto", cache_entries: int = 4096,
                 background: tuple[float, float, float] = (1.0, 1.0, 1.0), dynamic: bool = False,
                 directions: Sequence[str] = ("forward",), motion_reversal: bool = True,
                 use_stored_plucker: bool = True) -> None:
        self.plan = plan
        self.perceptual = perceptual
        self.weights = weights or LossWeights()
        self.single_view = single_view
        self.backend = backend
        self.background = background
        self.plucker = LatentCache(encoder, cache_entries)
        self.use_stored_plucker = use_stored_plucker  # Plücker latents stored in the shards (same tokenizer only)
        self.dynamic = dynamic
        self.directions = list(directions)
        self.motion_reversal = bool(motion_reversal and "reversed" in self.directions)
        if dynamic and single_view:
            raise ConfigError("--single-view is not implemented for dynamic training")
        self.times = LatentCache(encoder, max_entries=256) if dynamic else None

    def __call__(self, model: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        if self.dynamic:
            return self.dynamic_step(model, batch)
        stage = self.plan.stages[int(batch["stage"])]
        views, frames = batch["views"], batch["frames"]
        latents = batch["latents"]
        dev = latents.device
        B, _, _, t_all, h, w = latents.shape
        T_all, H, W = batch["rgb"].shape[2:5]
        T = stage.frames or T_all
        t = 1 + (T - 1) // 8
        K, c2w = batch["K"].float(), batch["c2w"].float()
        pl = self._plucker(batch, K, c2w, W, H).to(dev)
        sel = views.to(dev)
        lat = latents[:, sel, :, :t]
        pl = pl[:, sel, :, :t]
        cams = Cameras(K[:, sel, :T], c2w[:, sel, :T], W, H)
        dtype = _module_dtype(model)  # DeepSpeed holds bf16 weights: feed it bf16
        lat, pl = lat.to(dtype), pl.to(dtype)
        V = lat.shape[1]
        bits = pack_cameras(cams)  # [B, V, T, 25]
        if self.single_view:
            raw = model(lat.reshape(B * V, 1, *lat.shape[2:]), pl.reshape(B * V, 1, *pl.shape[2:]),
                        bits.reshape(B * V, 1, T, -1), W, H)
            raw = raw.reshape(B, -1, raw.shape[-1])
        else:
            raw = model(lat, pl, bits, W, H)
        gaussians = LatentDecoder.to_gaussians(raw.float(), stage.prune_ratio)
        rows = torch.arange(V, device=dev)[:, None]
        fr = frames.to(dev)
        targets = []
        for b in range(B):
            cb = Cameras(cams.K[b][rows, fr], cams.c2w[b][rows, fr], W, H)  # [V', F]
            targets.append((cb, batch["rgb"][b][sel][rows, fr], batch["depth"][b][sel][rows, fr]))
        return self._render_losses(gaussians, targets, raw[..., 3], stage, dev, V)

    def _plucker(self, batch: dict[str, Any], K: Tensor, c2w: Tensor, W: int, H: int) -> Tensor:
        """Plücker latents ``[B, V, 2C, t, h, w]`` (fp16, CPU) of all the batch's trajectories (cached)."""
        stored = batch.get("plucker") if self.use_stored_plucker else None
        return torch.stack([self.plucker.plucker(sid, Cameras(K[b].cpu(), c2w[b].cpu(), W, H),
                                             None if stored is None else stored[b])
                            for b, sid in enumerate(batch["sample_id"])])

    def _render_losses(self, gaussians: list[Any], targets: list[tuple[Cameras, Tensor, Tensor]], opacities: Tensor,
                       stage: Stage, dev: torch.device, views: int) -> tuple[Tensor, dict[str, Any]]:
        """Render every item's Gaussians at its target cameras (fp32, the stage's size) and compute the losses.

        ``targets[i]``: ``(cameras [...], rgb [..., H, W, 3] stored uint8 or float, depth [..., H, W])`` of
        ``gaussians[i]``; ``opacities``: the raw opacities of all items (the opacity term).
        """
        from lyra.render import render

        W, H = targets[0][0].width, targets[0][0].height
        Hs, Ws = (stage.height, stage.width) if stage.height else (H, W)
        preds, pdepths, tgts, tdepths = [], [], [], []
        with torch.autocast(device_type=dev.type, enabled=False):
            for g, (cb, rgb, dep) in zip(gaussians, targets, strict=True):
                out = render(g, cb, width=Ws, height=Hs, background=self.background, backend=self.backend)
                preds.append(out.rgb.reshape(-1, Hs, Ws, 3))
                pdepths.append(out.depth.reshape(-1, Hs, Ws))
                tgts.append(_resize_rgb(_to_unit(rgb).reshape(-1, H, W, 3), Hs, Ws))
                tdepths.append(_resize_depth(dep.float().reshape(-1, H, W), Hs, Ws))
            total, parts = student_losses(torch.cat(preds), torch.cat(tgts), torch.cat(pdepths),
                                          torch.cat(tdepths), opacities, stage.losses, self.perceptual, self.weights)
            # Every term is logged in every stage (the metrics CSV fixes its columns on the first row): the cheap
            # ones are evaluated without gradient when off, the perceptual term reads NaN when off.
            with torch.no_grad():
                off = [n for n in ("mse", "depth", "opacity") if n not in parts]
                if off:
                    _, extra = student_losses(torch.cat(preds).detach(), torch.cat(tgts),
                                              torch.cat(pdepths).detach(), torch.cat(tdepths), opacities.detach(), off)
                    parts.update(extra)
        metrics: dict[str, Any] = {n: parts.get(n, torch.tensor(float("nan"), device=dev)) for n in LOSS_NAMES}
        metrics["psnr"] = -10.0 * torch.log10(parts["mse"].clamp_min(1e-10))
        metrics["stage"] = float(self.plan.stages.index(stage))
        metrics["views"] = float(views)
        return total, metrics

    def dynamic_step(self, model: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """One step on dynamic SDG data (Lyra's dynamic stage).

        Which trajectories go in: the stage's selection ``views`` (``V'`` of the ``S`` trajectories of one
        direction, ``S = 6``) of the direction ``batch["direction"]`` (0: generated from the input video
        forward in time, 1: from the reversed video; always 0 without motion reversal) — at inference the
        decoder reads the six trajectories of one video, so it reads one direction here too. Their first
        ``T`` frames (the stage's ``frames``), ``t`` latent frames, the Plücker latents, and as **source time**
        the time of each of their frames.

        Which target times: ``batch["frames"][0]`` holds ``k`` frame indices ``g`` (the stage's
        ``target_frames``, drawn with its end weighting among the ``T`` input frames); target time
        ``τ = times[input view, g]``. The decoder runs once per ``(sample, τ)`` (the batch is repeated ``k``
        times, each copy with its own **target-time** latents).

        Which frames supervise ``τ`` (the Gaussians output for ``τ`` show the scene at ``τ``, so they are
        rendered into the cameras of the frames that show ``τ``, and compared with those frames): for every
        selected trajectory ``v``, the frame of its input-direction copy whose time is ``τ`` (frame ``g``),
        and — with motion reversal — the frame of its other-direction copy whose time is ``τ`` (frame
        ``T_all − 1 − g`` for uniform times): ``2·V'`` frames, twelve when all six trajectories are in.
        Frames are matched by their stored times (:func:`lyra.student.dynamic.frames_at_time`), so any
        monotonic time grid works.
        """
        stage = self.plan.stages[int(batch["stage"])]
        views, frames = batch["views"], batch["frames"]
        direction = int(batch.get("direction", 0))
        latents = batch["latents"]
        dev = latents.device
        B, V_all, _, t_all, h, w = latents.shape
        T_all, H, W = batch["rgb"].shape[2:5]
        T = stage.frames or T_all
        t = 1 + (T - 1) // 8
        S = V_all // len(self.directions)  # trajectories per direction
        sel = views.to(dev)
        in_idx = sel + direction * S
        sup_idx = torch.cat([in_idx, sel + (1 - direction) * S]) if self.motion_reversal else in_idx
        K, c2w = batch["K"].float(), batch["c2w"].float()
        times = batch["times"].float()  # [B, V_all, T_all]
        pl = self._plucker(batch, K, c2w, W, H).to(dev)[:, in_idx, :, :t]
        lat = latents[:, in_idx, :, :t]
        cams = Cameras(K[:, in_idx, :T], c2w[:, in_idx, :T], W, H)
        src = self.times.source(times[:, in_idx, :T].cpu(), H, W).to(dev)  # [B, V', C, t, h, w]
        gs = frames[0].to(dev)  # [k] target frame indices (in the input direction)
        k = gs.numel()
        tau = times[:, in_idx[0]][:, gs]  # [B, k]
        tgt = self.times.target(tau.reshape(-1).cpu(), T, H, W).to(dev)  # [B·k, 1, C, t, h, w]
        dtype = _module_dtype(model)
        V = lat.shape[1]

        def rep(x: Tensor) -> Tensor:  # [B, ...] → [B·k, ...], order (b, j)
            return x.repeat_interleave(k, 0)

        raw = model(rep(lat).to(dtype), rep(pl).to(dtype), rep(pack_cameras(cams)), W, H, rep(src).to(dtype),
                    tgt.to(dtype))
        gaussians = LatentDecoder.to_gaussians(raw.float(), stage.prune_ratio)
        from lyra.student.dynamic import TIME_ATOL

        targets = []
        for i in range(B * k):
            b, j = divmod(i, k)
            err = (times[b, sup_idx] - tau[b, j]).abs()  # [V_sup, T_all]
            best, f = err.min(dim=1)
            if float(best.max()) > TIME_ATOL:
                raise ConfigError(f"sample {batch['sample_id'][b]}: a supervising trajectory has no frame at time "
                                  f"{float(tau[b, j]):.4f} (times of the directions do not match)")
            targets.append((Cameras(K[b, sup_idx, f], c2w[b, sup_idx, f], W, H), batch["rgb"][b][sup_idx, f],
                            batch["depth"][b][sup_idx, f]))
        total, metrics = self._render_losses(gaussians, targets, raw[..., 3], stage, dev, V)
        metrics["target_frames"] = float(len(sup_idx))
        return total, metrics


def _to_unit(rgb: Tensor) -> Tensor:
    """uint8 (stored) or float in [0, 1] → float32 in [0, 1]."""
    return rgb.float() / 255.0 if rgb.dtype == torch.uint8 else rgb.float()


def _resize_rgb(rgb: Tensor, H: int, W: int) -> Tensor:
    """``[N, h, w, 3]`` → ``[N, H, W, 3]`` by area averaging (identity at the same size)."""
    if rgb.shape[1:3] == (H, W):
        return rgb
    return F.interpolate(rgb.permute(0, 3, 1, 2), size=(H, W), mode="area").permute(0, 2, 3, 1)


def _resize_depth(depth: Tensor, H: int, W: int) -> Tensor:
    """``[N, h, w]`` → ``[N, H, W]`` by nearest neighbour (keeps ``inf``/invalid markers intact)."""
    if depth.shape[1:] == (H, W):
        return depth
    return F.interpolate(depth[:, None], size=(H, W), mode="nearest")[:, 0]


class StudentTrainer(Trainer):
    """:class:`~lyra.train.Trainer` that tells DeepSpeed the per-GPU batch size (it reads it from dataloaders
    passed to ``prepare``; the student's batches come from a :class:`SampleStream` instead)."""

    def __init__(self, *args: Any, micro_batch_size: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.micro_batch_size = micro_batch_size

    def _make_accelerator(self) -> Any:
        acc = super()._make_accelerator()
        plugin = getattr(acc.state, "deepspeed_plugin", None)
        if plugin is not None and plugin.is_auto("train_micro_batch_size_per_gpu"):
            plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = self.micro_batch_size
        return acc


# ---------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lyra.train.recipes.student", description=__doc__.split("\n")[0])
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options (shared by ``python -m lyra.train.recipes.student`` and ``lyra train student``)."""
    p.add_argument("--data", required=True, metavar="SDG_DIR", help="SDG folder (written by `lyra sdg`)")
    add_run_arguments(p, export_reserve=1.5)
    p.add_argument("--model", default="tiny", help="decoder preset (tiny, official) or a JSON file of DecoderConfig")
    p.add_argument("--init", "--init-from", dest="init", default=None, metavar="FILE|DIR",
                   help="start from weights: a student export folder or a state dict file (e.g. lyra_static.pt)")
    p.add_argument("--tokenizer", default=None,
                   help="tokenizer preset for the Plücker latents (default: the SDG data's preset, else tiny)")
    p.add_argument("--stages", default=None, metavar="JSON",
                   help=f"stage list (default {DEFAULT_STAGES_FILE}; {DEFAULT_DYNAMIC_STAGES_FILE} with --dynamic)")
    p.add_argument("--batch-size", type=int, default=None, help="samples per step per process (default 4 CUDA, 1 CPU)")
    p.add_argument("--grad-accum", type=int, default=1)
    add_optimizer_arguments(p, lr=1e-4, warmup=100)
    p.set_defaults(schedule="constant", ema=0.999)
    p.add_argument("--lpips-weights", default=None, metavar="FILE",
                   help="local VGG16 (torchvision layout) or lpips state dict for LPIPS(VGG) "
                   "(default $LYRA_LPIPS_WEIGHTS; without: 1 - SSIM replaces LPIPS)")
    p.add_argument("--lpips-lin", default=None, metavar="FILE",
                   help="LPIPS linear layers (lpips/weights/v0.1/vgg.pth) when not in --lpips-weights")
    p.add_argument("--no-depth-loss", action="store_true", help="ablation: no depth term in any stage")
    p.add_argument("--no-prune", action="store_true", help="ablation: no pruning (and no opacity term)")
    p.add_argument("--single-view", action="store_true",
                   help="ablation: decode each trajectory alone and merge the Gaussians (no multi-view fusion)")
    p.add_argument("--dynamic", action="store_true",
                   help="dynamic SDG data (lyra sdg --dynamic): source/target time latents, supervision by the frames "
                   "at the target time (Lyra's dynamic stage; start from a static student with --init-from)")
    p.add_argument("--no-motion-reversal", action="store_true",
                   help="ablation (--dynamic): ignore the reversed trajectories of the data (input and supervision "
                   "from the forward six only)")
    p.add_argument("--gradient-checkpointing", action="store_true", help="recompute decoder blocks in backward")
    p.add_argument("--render-backend", choices=("auto", "torch", "gsplat"), default="auto")
    p.add_argument("--plucker-cache", type=int, default=4096, metavar="N",
                   help="samples whose Plücker latents are cached")
    p.add_argument("--val-data", default=None, metavar="SDG_DIR", help="held-out SDG folder evaluated at export")
    p.add_argument("--val-scenes", type=int, default=8, help="held-out scenes evaluated at export")
    p.add_argument("--ckpt-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--export-to", default=None, metavar="DIR", help="export folder (default OUT/export)")
    p.add_argument("--no-export", action="store_true", help="skip the export at the end of this invocation")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even where CUDA is present")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (plain metric lines instead)")


def main(argv: list[str] | None = None) -> int:
    """Entry point (``argv`` defaults to ``sys.argv[1:]``)."""
    return training_main(build_parser(), run, "python -m lyra.train.recipes.student", "lyra train student", argv)


def _decoder_config(spec: str, gradient_checkpointing: bool) -> DecoderConfig:
    path = Path(spec)
    if spec.endswith(".json"):
        if not path.is_file():
            raise ConfigError(f"--model {spec}: no such JSON file")
        try:
            cfg = DecoderConfig.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as e:
            raise ConfigError(f"--model {spec}: not a DecoderConfig JSON ({e})") from None
    else:
        cfg = decoder_config(spec)
    return cfg.with_(gradient_checkpointing=gradient_checkpointing)


def _initial_weights(model: LatentDecoder, spec: str) -> None:
    from lyra.student import load_state_dict_strict, read_state_dict

    p = Path(spec)
    if p.is_dir():
        loaded = LatentDecoder.from_pretrained(p)
        if loaded.config.latent_channels != model.config.latent_channels:
            raise ConfigError(f"--init {spec}: a student of {loaded.config.latent_channels}-channel latents, --model "
                              f"reads {model.config.latent_channels}")
        model.load_state_dict(loaded.state_dict())
    else:
        load_state_dict_strict(model, read_state_dict(p), source=str(p))


def _sharded_strategy() -> str | None:
    """``"fsdp"`` / ``"deepspeed"`` when ``accelerate launch`` set one up, else ``None``."""
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        return "fsdp"
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        return "deepspeed"
    return None


def _data_tokenizer(settings: dict[str, Any], dynamic: bool) -> str:
    """The tokenizer preset of the SDG data's teacher preset (its dynamic tokenizer for dynamic data; ``tiny`` when
    the preset is not a known one)."""
    from lyra.weights.hub import PRESETS

    preset = PRESETS.get(settings.get("preset") or "")
    return preset.tokenizer_for(dynamic) if preset is not None else "tiny"


def run(args: argparse.Namespace, t_process: float | None = None, command: str | None = None) -> int:
    """Train, checkpoint and export with parsed options."""
    from lyra.shards import ShardDataset
    from lyra.tokenizer import Tokenizer

    rr = start_run(args, t_process, command)
    device, export_dir = rr.device, rr.export_dir
    batch_size = args.batch_size or (4 if rr.cuda else 1)
    if not args.no_export and export_dir.exists() and any(export_dir.iterdir()) \
            and not (export_dir / CONFIG_NAME).is_file():
        raise OutputPathError(f"{export_dir} exists and is not a student export; choose another --export-to")

    dataset = ShardDataset(args.data, as_float=False)
    if dataset.dynamic != args.dynamic:
        raise ConfigError(f"{args.data} holds {'dynamic' if dataset.dynamic else 'static'} scenes: "
                          + ("add --dynamic" if dataset.dynamic else "drop --dynamic (make dynamic data with "
                             "`lyra sdg --dynamic`)"))
    if args.no_motion_reversal and not args.dynamic:
        raise ConfigError("--no-motion-reversal belongs with --dynamic")
    if args.dynamic and args.single_view:
        raise ConfigError("--single-view is not implemented for dynamic training")
    motion_reversal = args.dynamic and "reversed" in dataset.directions and not args.no_motion_reversal
    settings = dataset.manifest.get("settings") or {}
    tok_name = args.tokenizer or _data_tokenizer(settings, args.dynamic)
    cfg_model = _decoder_config(args.model, args.gradient_checkpointing)
    if dataset.latent_channels is not None and dataset.latent_channels != cfg_model.latent_channels:
        raise ConfigError(f"{args.data} holds {dataset.latent_channels}-channel latents, the student --model "
                          f"{args.model} reads {cfg_model.latent_channels}")
    if args.stages:
        plan = load_stages(args.stages)
    else:
        plan = default_dynamic_stages() if args.dynamic else default_stages()
    plan = ablate(plan, args.no_depth_loss, args.no_prune)
    plan.ends(args.steps)  # a stage list whose ends decrease fails here, before any work
    perceptual = PerceptualLoss.from_weights(args.lpips_weights, args.lpips_lin).to(device)
    tokenizer = Tokenizer.from_preset(tok_name).to(device).eval().requires_grad_(False)
    torch.manual_seed(args.seed)
    decoder = LatentDecoder(cfg_model)
    decoder.check_tokenizer(tokenizer, f"tokenizer {tok_name}")
    if args.init:
        _initial_weights(decoder, args.init)
        print(f"initial weights: {args.init} (a resumed checkpoint overrides them)", flush=True)
    model = StudentModel(decoder)
    strategy = _sharded_strategy()
    ema = args.ema or None
    if ema is not None and strategy == "fsdp":
        print("note: EMA is off under FSDP (the shadow would hold shards); the export is the raw weights",
              flush=True)
        ema = None

    objective = StudentObjective(plan, tokenizer, perceptual, single_view=args.single_view,
                                 backend=args.render_backend, cache_entries=args.plucker_cache, dynamic=args.dynamic,
                                 directions=dataset.directions, motion_reversal=motion_reversal,
                                 use_stored_plucker=stored_plucker_usable(settings, tok_name))
    cfg = rr.config(
        grad_accum=args.grad_accum, ema_decay=ema,
        print_every=args.log_every if args.no_progress else None,
        extra={"model": args.model, "tokenizer": tok_name, "batch_size": batch_size, "data": str(args.data),
               "stages": plan.to_dict(), "perceptual": perceptual.kind, "single_view": args.single_view,
               "dynamic": args.dynamic, "motion_reversal": motion_reversal, "init": args.init},
    )
    holder: dict[str, StudentTrainer] = {}
    stream = SampleStream(dataset, batch_size, plan, lambda: holder["t"].total_steps, seed=args.seed,
                          grad_accum=args.grad_accum, dynamic=args.dynamic, directions=dataset.directions,
                          motion_reversal=motion_reversal)
    trainer = holder["t"] = StudentTrainer(model, objective, stream, cfg, micro_batch_size=batch_size)
    result = fit(rr, trainer, f"; perceptual term: {perceptual.describe()}")
    acc = trainer.accelerator
    if args.no_export:
        return 0
    state = acc.get_state_dict(trainer.model)  # collective under FSDP / DeepSpeed
    if not export_due(rr, trainer):
        return 0
    wrapped = final_weights(trainer, StudentModel(LatentDecoder(cfg_model.with_(gradient_checkpointing=False))),
                            {k: v.float() for k, v in state.items()})
    final = wrapped.decoder.to(device)
    record = training_record(
        rr, trainer, result, f"lyra LatentDecoder ({args.model}; bidirectional Mamba-2 + Transformer)",
        final.num_parameters(), {
            "batch_size_per_process": batch_size,
            "processes": acc.num_processes,
            "grad_accum": args.grad_accum,
            "distributed": str(acc.distributed_type),
            "mixed_precision": str(acc.mixed_precision),
            "losses": {"weights": LossWeights().to_dict(), "perceptual": perceptual.kind,
                       "perceptual_description": perceptual.describe(),
                       "depth": "smooth-L1 of median/MAD-normalised depths, valid where target finite and > 0",
                       "opacity": "mean opacity before pruning (pruning stages only)"},
            "ablations": {"no_depth_loss": args.no_depth_loss, "no_prune": args.no_prune,
                          "single_view": args.single_view, "no_motion_reversal": args.no_motion_reversal},
            "dynamic": {"target_time": "frames at the target time supervise it (StudentObjective.dynamic_step)",
                        "time_encoding": "[t, cos t, sin t] video, 2x-1, tokenizer-encoded; source per frame, "
                                         "target constant", "motion_reversal": motion_reversal,
                        "directions": dataset.directions} if args.dynamic else None,
            "init": args.init,
            "stages": plan.to_dict(),
            "gradient_checkpointing": args.gradient_checkpointing,
            "data": {"sdg": str(args.data), "samples": len(dataset), "settings": settings, "tokenizer": tok_name,
                     "seed": args.seed},
            "plucker_cache": {"hits": objective.plucker.hits, "misses": objective.plucker.misses,
                              "stored": objective.plucker.stored_hits},
            "time_cache": None if objective.times is None else {"hits": objective.times.hits,
                                                                "misses": objective.times.misses},
            "validation": None,
        }, versions=("accelerate", "gsplat"), ema=ema)
    meta = {"preset": args.model if args.model in ("tiny", "official") else None, "tokenizer": tok_name,
            "single_view": args.single_view, "dynamic": args.dynamic}
    if args.dynamic:
        meta["motion_reversal"] = motion_reversal

    def validate(reloaded: LatentDecoder) -> dict[str, Any]:
        """Held-out fidelity of the exported weights (fp16, as users load them)."""
        from lyra.eval.student_benchmark import evaluate_fidelity

        return {"validation": evaluate_fidelity(reloaded, args.val_data, tokenizer, max_scenes=args.val_scenes,
                                                backend=args.render_backend, single_view=args.single_view,
                                                progress=False, dynamic=args.dynamic)}

    export_and_test(record, lambda rec: final.save_pretrained(export_dir, meta, rec,
                                                              config=cfg_model.with_(gradient_checkpointing=False)),
                    (lambda: LatentDecoder.from_pretrained(export_dir, device=device)) if args.val_data else None,
                    validate)
    val = record["validation"]
    shown = f"; held-out PSNR {val['psnr']:.2f} dB" if val else ""
    print(f"exported {export_dir} (perceptual term: {perceptual.kind}){shown}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
