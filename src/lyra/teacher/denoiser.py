"""The teacher's video diffusion transformer: diffusers' ``CosmosTransformer3DModel`` with GEN3C inputs.

GEN3C extends the input channels of the Cosmos DiT with the latents of the 3D-cache renders and
their masks. :class:`TeacherDenoiser` does the same with diffusers' class, unchanged:

* input channels, in order: noisy latents (C) | warp latents (C) | warp mask latents (1) — the
  ``hidden_states`` given to the transformer — then the Cosmos Video2World condition-mask channel
  (1) that the transformer itself appends from its ``condition_mask`` argument. ``in_channels`` of the
  diffusers config counts that channel, hence ``2C + 2`` (``34`` for the Cosmos tokenizer's C = 16);
  ``C = out_channels`` is the latent channel count of the tokenizer the teacher reads. The condition mask marks
  latent frames that are given clean (Video2World); the teacher conditions through the warp latents
  instead, so it passes zeros (the channel is kept so that a converted GEN3C/Cosmos checkpoint loads).
* ``concat_padding_mask`` (Cosmos' extra padding channel): off in ``tiny``; on in ``official`` as in the
  checkpoint, where an all-zero padding mask (no padding) is passed. diffusers resizes that mask with
  torchvision (nearest); without torchvision (not a dependency) the same nearest resize is supplied through
  ``torch.nn.functional.interpolate`` (what torchvision does for tensors).
* the text cross-attention is kept (every Cosmos block has one); the teacher is not prompted, so it
  attends to a learned "null context" of ``context_tokens × text_embed_dim`` stored with the model
  (an explicit ``context`` argument, e.g. T5 embeddings for a converted checkpoint, overrides it).
* time: the flow-matching time ``t ∈ [0, 1]`` (:mod:`lyra.teacher.sampler`) enters as
  ``1000 · t`` through Cosmos' sinusoidal timestep embedding, one value per sample.

Presets: ``tiny`` (trained here, sized for 2 CPU cores) and ``official`` (the architecture of
GEN3C-Cosmos-7B, i.e. Cosmos-1.0-Diffusion-7B-Video2World — 28 layers, 32 heads × 128, text dim 1024,
AdaLN-LoRA 256, patch (1, 2, 2), learnable extra positional embedding — with the extra channels).
"""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lyra.errors import ConfigError, WeightsError
from lyra.fileio import atomic_dir
from lyra.teacher.conditioning import Conditions
from lyra.tokenizer.presets import LATENT_CHANNELS

__all__ = ["ANCHORS", "PREDICTIONS", "PRESETS", "TIME_SCALE", "TeacherDenoiser", "in_channels_for", "preset_config"]

#: ``prediction = "clean"`` divides by ``max(t, CLEAN_T_MIN)``: Euler grids of up to 64 steps never reach below it.
CLEAN_T_MIN = 1.0 / 64
#: What the transformer's output is (:attr:`TeacherDenoiser.prediction`).
PREDICTIONS = ("velocity", "clean", "edm")
#: What the denoiser's residual flow is anchored on (:attr:`TeacherDenoiser.anchor_mode`).
ANCHORS = ("none", "warp", "filled")
#: Flow time ``t ∈ [0, 1]`` is given to the transformer as ``TIME_SCALE · t``.
TIME_SCALE = 1000.0
_WRAPPER_FILE = "teacher.json"
_WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"

_OFFICIAL = {
    # Cosmos-1.0-Diffusion-7B-Video2World (diffusers' scripts/convert_cosmos_to_diffusers.py),
    # in_channels 16 + 1 widened by GEN3C-style conditioning channels. The Cosmos tokenizer's 16 channels, always.
    "in_channels": 2 * LATENT_CHANNELS + 2,
    "out_channels": LATENT_CHANNELS,
    "num_attention_heads": 32,
    "attention_head_dim": 128,
    "num_layers": 28,
    "mlp_ratio": 4.0,
    "text_embed_dim": 1024,
    "adaln_lora_dim": 256,
    "max_size": (128, 240, 240),
    "patch_size": (1, 2, 2),
    "rope_scale": (2.0, 1.0, 1.0),
    "concat_padding_mask": True,
    "extra_pos_embed_type": "learnable",
}

# 8 layers, 4 heads × 32: 2.9 M parameters; one step for six trajectories of 3 × 22 × 40 latents
# (batch 6) took 0.19–0.23 s (min/median of 5 no-grad forwards) on 2 busy CPU cores (provisional).
_TINY = {
    "in_channels": 2 * LATENT_CHANNELS + 2,  # rebuilt for another C by preset_config(latent_channels=C)
    "out_channels": LATENT_CHANNELS,
    "num_attention_heads": 4,
    "attention_head_dim": 32,
    "num_layers": 8,
    "mlp_ratio": 4.0,
    "text_embed_dim": 64,
    "adaln_lora_dim": 64,
    "max_size": (16, 128, 128),
    "patch_size": (1, 2, 2),
    "rope_scale": (1.0, 1.0, 1.0),
    "concat_padding_mask": False,
    "extra_pos_embed_type": "learnable",
}

#: Transformer configs and the null-context length of each preset.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"transformer": _TINY, "context_tokens": 1},
    "official": {"transformer": _OFFICIAL, "context_tokens": 512},
}


def in_channels_for(latent_channels: int, generated_channels: int | None = None) -> int:
    """The transformer's ``in_channels`` for ``C`` latent channels of which it generates ``K`` (default all):
    noisy K + warp C + mask 1 + condition mask 1."""
    k = latent_channels if generated_channels is None else generated_channels
    return k + latent_channels + 2


def preset_config(name: str, latent_channels: int | None = None,
                  generated_channels: int | None = None) -> dict[str, Any]:
    """A copy of preset ``name``'s ``{"transformer": diffusers config, "context_tokens": int}``.

    ``latent_channels`` ``C``: the channel count of the tokenizer the teacher will read; ``None`` keeps the
    preset's own (16, the Cosmos tokenizer's); another value rebuilds ``in_channels = 2C + 2`` and
    ``out_channels = C``. ``official`` is GEN3C's architecture on the Cosmos tokenizer: only 16 is accepted.
    ``generated_channels`` ``K ≤ C``: the transformer generates only the leading ``K`` channels
    (``out_channels = K``, ``in_channels = K + C + 2``); the others follow the warp anchor (see
    :attr:`TeacherDenoiser.generated_channels`).
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown teacher preset {name!r}; choose one of {sorted(PRESETS)}")
    p = PRESETS[name]
    transformer = dict(p["transformer"])
    if latent_channels is not None:
        c = int(latent_channels)
        if c < 1 or c != latent_channels:
            raise ConfigError(f"latent_channels must be a positive integer, got {latent_channels!r}")
        if name == "official" and c != transformer["out_channels"]:
            raise ConfigError(f"the official teacher reads the Cosmos tokenizer's {transformer['out_channels']} "
                              f"latent channels, not {c}")
        transformer.update(in_channels=in_channels_for(c), out_channels=c)
    if generated_channels is not None:
        c = int(transformer["in_channels"]) - int(transformer["out_channels"]) - 2
        k = int(generated_channels)
        if name == "official" or not 1 <= k <= c or k != generated_channels:
            raise ConfigError(f"generated_channels must be an integer in 1..{c} (the latent channels) for a tiny "
                              f"teacher, got {generated_channels!r}" + (" (the official teacher generates all 16)"
                                                                       if name == "official" else ""))
        transformer.update(in_channels=in_channels_for(c, k), out_channels=k)
    return {"transformer": transformer, "context_tokens": p["context_tokens"]}


class _NearestResize:
    """The piece of ``torchvision.transforms`` diffusers' Cosmos transformer uses: ``functional.resize`` of a
    tensor with ``InterpolationMode.NEAREST`` (torchvision runs ``F.interpolate(mode="nearest")`` for it)."""

    class InterpolationMode:
        NEAREST = "nearest"

    class functional:  # noqa: N801 - mirrors torchvision.transforms.functional
        @staticmethod
        def resize(img: Tensor, size: list[int], interpolation: str = "nearest") -> Tensor:
            if interpolation != "nearest":
                raise ValueError(f"only nearest resizing is provided without torchvision, got {interpolation}")
            return torch.nn.functional.interpolate(img, size=list(size), mode="nearest")


def _ensure_padding_resize() -> None:
    """Give diffusers' Cosmos transformer module a nearest ``resize`` when torchvision is not installed."""
    import diffusers.models.transformers.transformer_cosmos as tc

    if getattr(tc, "transforms", None) is None:
        tc.transforms = _NearestResize


def _cosmos_cls() -> type:
    try:
        from diffusers import CosmosTransformer3DModel
    except ImportError as e:  # pragma: no cover - diffusers is a declared dependency
        raise WeightsError("the teacher needs the 'diffusers' package (pip install 'diffusers>=0.35')") from e
    return CosmosTransformer3DModel


class TeacherDenoiser(nn.Module):
    """Velocity predictor ``v(x_t, t | conditions)`` on normalised latents ``[B, C, t, h, w]``.

    Args:
        transformer: a ``CosmosTransformer3DModel`` with ``in_channels`` ``K + C + 2`` and ``out_channels`` ``K``:
            ``C`` the latent channels of the tokenizer it reads (16 for the Cosmos tokenizer), ``K ≤ C`` those it
            generates (:attr:`generated_channels`; ``K = C`` in every shipped teacher).
        context_tokens: length of the learned null context for the cross-attention.
    """

    def __init__(self, transformer: nn.Module, context_tokens: int = 1) -> None:
        super().__init__()
        cfg = transformer.config
        k = int(cfg.out_channels)
        c = int(cfg.in_channels) - k - 2
        if k < 1 or c < k:
            raise ConfigError(
                f"the teacher needs a transformer with in_channels K + C + 2 (noisy K + warp C + mask 1 + condition "
                f"mask 1) for out_channels K ≤ C latent channels, e.g. 2C + 2 = {in_channels_for(k)} for C = K = {k}; "
                f"got in_channels {cfg.in_channels}"
            )
        self.transformer = transformer
        device = next(transformer.parameters()).device
        self.null_context = nn.Parameter(torch.zeros(1, context_tokens, cfg.text_embed_dim, device=device))
        if device.type != "meta":
            nn.init.normal_(self.null_context, std=0.02)
        #: The tokenizer preset this denoiser reads, as ``teacher.json`` records it (``None``: not recorded).
        self.tokenizer_name: str | None = None
        #: ``"warp"``: the network works on the residual from the warp latents (:meth:`anchor`, see :meth:`forward`);
        #: ``"filled"``: the same from the latents of the warp with its holes filled (:attr:`fills_holes`);
        #: ``"none"``: on the latents themselves (GEN3C, the official architecture and the tiny Cosmos-latent teacher).
        self.anchor_mode = "none"
        #: ``"velocity"``: the transformer predicts the flow's velocity (GEN3C's and the shipped teachers' choice);
        #: ``"clean"``: it predicts the clean latents ``x̂_0`` and the velocity is ``(x_t − x̂_0) / t`` (see
        #: :meth:`forward`); ``"edm"``: its output ``F`` is mixed with the noisy input as Karras et al.'s (2022)
        #: preconditioning does, so that ``x̂_0 = c_skip(t)·x_t + c_out(t)·F`` (see :meth:`forward`).
        self.prediction = "velocity"
        #: Sampler steps this denoiser was made for (a few-step distillation records its count; ``None``: the
        #: pipeline's default, 35).
        self.default_steps: int | None = None

    # ------------------------------------------------------------------ the warp anchor
    def anchor(self, conditions: Conditions) -> Tensor:
        """The anchor latents ``[B, C, t, h, w]``: with :attr:`anchor_mode` ``"filled"`` the condition latents
        themselves (the filled warp's, everywhere: :attr:`fills_holes`); otherwise the warp latents of the cells
        the warp fully covers and zero elsewhere, since a cell the warp covers only in part mixes the warped pixels
        with the black of its holes and anchors nothing (which leaves every depth edge, cracked even at the input
        camera, to the generator)."""
        if self.anchor_mode == "filled":
            return conditions.latents
        return self.warp_anchor(conditions)

    @staticmethod
    def warp_anchor(conditions: Conditions) -> Tensor:
        """The warp latents of the cells the warp fully covers, zero elsewhere: ``[B, C, t, h, w]`` (the anchor of
        :attr:`anchor_mode` ``"warp"``, and of the trailing channels of a block-code teacher anchored on nothing)."""
        full = (conditions.mask_latents >= 1.0 - 1e-4).to(conditions.latents.dtype)
        return conditions.latents * full

    def silence_output(self) -> TeacherDenoiser:
        """Zero the transformer's output projection (weights and bias): the network then outputs zero, so that a
        clean-prediction denoiser with an anchor samples the anchor itself (a fresh ``"filled"`` teacher starts as
        the filled warp and learns only what improves on it, as ControlNet's zero convolutions start from the
        frozen model). Gradients still reach every layer after the first step. Returns ``self``."""
        with torch.no_grad():
            self.transformer.proj_out.weight.zero_()
            if self.transformer.proj_out.bias is not None:
                self.transformer.proj_out.bias.zero_()
        return self

    @property
    def fills_holes(self) -> bool:
        """Whether this denoiser reads conditions encoded from the warp with its holes filled
        (:func:`lyra.teacher.conditioning.encode_warped` with ``fill``; :attr:`anchor_mode` ``"filled"``). Every
        caller that builds its conditions passes this on (the pipeline, SDG, the trainer's pool and test)."""
        return self.anchor_mode == "filled"

    def set_prediction(self, kind: str) -> TeacherDenoiser:
        """``"velocity"``, ``"clean"`` or ``"edm"`` (see :attr:`prediction`); recorded in ``teacher.json``. Returns
        ``self``."""
        if kind not in PREDICTIONS:
            raise ConfigError(f"unknown teacher prediction {kind!r}; choose one of {', '.join(PREDICTIONS)}")
        self.prediction = kind
        return self

    def set_anchor(self, mode: str) -> TeacherDenoiser:
        """``"none"``, ``"warp"`` or ``"filled"`` (see :attr:`anchor_mode`); recorded in ``teacher.json``. Returns
        ``self``."""
        if mode not in ANCHORS:
            raise ConfigError(f"unknown teacher anchor {mode!r}; choose one of {', '.join(ANCHORS)}")
        self.anchor_mode = mode
        return self

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config: str | dict[str, Any] = "tiny", *, meta: bool = False,
                    seed: int | None = 0, latent_channels: int | None = None) -> TeacherDenoiser:
        """A freshly initialised denoiser of preset name or ``{"transformer": ..., "context_tokens": ...}``.

        ``meta=True`` builds it on the meta device (no memory; for the 7B ``official`` architecture).
        ``seed`` makes the initialisation reproducible (``None``: torch's global RNG).
        ``latent_channels``: with a preset name, the tokenizer's ``C`` (see :func:`preset_config`); with a
        config dict it must agree with the dict's ``out_channels`` (ConfigError otherwise).
        """
        if isinstance(config, str):
            cfg = preset_config(config, latent_channels)
        else:
            cfg = config
            tr = cfg["transformer"]
            got = int(tr.get("out_channels", 0))
            reads = int(tr.get("in_channels", 0)) - got - 2
            if latent_channels is not None and reads != latent_channels:
                raise ConfigError(f"the teacher config has out_channels {got}, not latent_channels {latent_channels}"
                                  if reads == got else f"the teacher config reads {reads} latent channels "
                                  f"(in_channels − out_channels − 2), not latent_channels {latent_channels}")
        cls_ = _cosmos_cls()
        ctx = torch.device("meta") if meta else nullcontext()
        rng = torch.random.fork_rng(devices=[]) if seed is not None else nullcontext()
        with rng, ctx:
            if seed is not None:
                torch.manual_seed(seed)
            return cls(cls_(**cfg["transformer"]), int(cfg["context_tokens"]))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: torch.device | str | None = None,
                        dtype: torch.dtype | None = None) -> TeacherDenoiser:
        """Load a folder written by :meth:`save_pretrained` (diffusers layout + ``teacher.json``).

        A converted Cosmos/GEN3C transformer folder without ``teacher.json`` loads too, with a zero
        null context of 512 tokens (an empty T5 prompt is a better choice: pass ``context``).
        :attr:`tokenizer_name` is the tokenizer preset ``teacher.json`` records (``None`` if it records none).
        """
        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise WeightsError(f"{folder} is not a diffusers model folder (no config.json); "
                               "write one with TeacherDenoiser.save_pretrained or convert a checkpoint")
        try:
            transformer = _cosmos_cls().from_pretrained(folder, torch_dtype=dtype)
        except (OSError, ValueError, RuntimeError) as e:
            raise WeightsError(f"cannot load the teacher transformer from {folder}: {e}") from e
        extra = folder / _WRAPPER_FILE
        tokens = 512
        state = None
        recorded: str | None = None
        anchor, prediction, default_steps = "none", "velocity", None
        if extra.is_file():
            meta = json.loads(extra.read_text())
            tokens = int(meta["context_tokens"])
            recorded = meta.get("tokenizer")
            anchor = meta.get("anchor", "none")
            prediction = meta.get("prediction", "velocity")
            default_steps = meta.get("steps")
            from safetensors.torch import load_file

            state = load_file(folder / meta["null_context_file"])
        model = cls(transformer, tokens)
        model.tokenizer_name = recorded
        model.set_anchor(anchor).set_prediction(prediction)
        model.default_steps = None if default_steps is None else int(default_steps)
        with torch.no_grad():
            if state is not None:
                model.null_context.copy_(state["null_context"])
            else:
                model.null_context.zero_()
        if dtype is not None:
            model = model.to(dtype)
        return model.to(device) if device is not None else model

    def save_pretrained(self, path: str | os.PathLike, dtype: torch.dtype | None = None,
                        tokenizer: str | None = None) -> Path:
        """Write a diffusers-format folder (config + weights, in ``dtype`` if given) and the null context.

        ``tokenizer`` (default: :attr:`tokenizer_name`): the tokenizer preset the denoiser reads, recorded in
        ``teacher.json`` (omitted when ``None``). Written atomically; ``path`` must not exist or be an empty folder
        (OutputPathError otherwise).
        """
        from safetensors.torch import save_file

        with atomic_dir(path) as tmp:
            state = {k: v.detach().to("cpu", dtype or v.dtype).contiguous()
                     for k, v in self.transformer.state_dict().items()}
            save_file(state, str(tmp / _WEIGHTS_NAME), metadata={"format": "pt"})
            self.transformer.save_config(tmp)
            ctx = self.null_context.detach().to("cpu", dtype or self.null_context.dtype).contiguous()
            save_file({"null_context": ctx}, str(tmp / "null_context.safetensors"))
            info: dict[str, Any] = {"context_tokens": ctx.shape[1], "null_context_file": "null_context.safetensors"}
            tokenizer = tokenizer if tokenizer is not None else self.tokenizer_name
            if tokenizer is not None:
                info["tokenizer"] = tokenizer
            if self.anchor_mode != "none":
                info["anchor"] = self.anchor_mode
            if self.prediction != "velocity":
                info["prediction"] = self.prediction
            if self.default_steps is not None:
                info["steps"] = int(self.default_steps)
            (tmp / _WRAPPER_FILE).write_text(json.dumps(info, indent=2) + "\n")
        return Path(path)

    # ------------------------------------------------------------------ properties
    @property
    def config(self) -> Any:
        return self.transformer.config

    @property
    def latent_channels(self) -> int:
        """``C``: the latent channels of the tokenizer this denoiser reads (``in_channels − out_channels − 2``)."""
        cfg = self.transformer.config
        return int(cfg.in_channels) - int(cfg.out_channels) - 2

    @property
    def generated_channels(self) -> int:
        """``K``: the leading latent channels the transformer generates (its ``out_channels``; ``K = C`` unless a
        fresh denoiser was built with fewer). The other ``C − K`` channels follow the straight path to the warp
        anchor (:meth:`anchor`; zero where it has none, whatever :attr:`anchor_mode` says), which a block code's
        trailing channels (fine texture) need: they come from the warp where it sees and stay at their mean in the
        holes, and the transformer's tokens carry ``K × 2 × 2`` values instead of ``C × 2 × 2``."""
        return int(self.transformer.config.out_channels)

    @property
    def device(self) -> torch.device:
        return self.null_context.device

    @property
    def dtype(self) -> torch.dtype:
        return self.null_context.dtype

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ forward
    def forward(self, noisy: Tensor, t: Tensor, conditions: Conditions, context: Tensor | None = None) -> Tensor:
        """Predicted velocity ``[B, C, t, h, w]`` (float32), ``C`` = :attr:`latent_channels`.

        With :attr:`anchor_mode` ``"warp"`` the transformer models the flow of the residual ``y = x − a`` from the
        warp anchor ``a`` (:meth:`anchor`): it reads ``y_t = x_t − (1 − t)·a`` and its velocity ``v_y`` becomes
        ``v_x = v_y − a``. This is the same rectified flow in ``x`` (loss and sampler unchanged), but where the warp
        sees, the residual is small and copying the input is the network's default rather than something to learn.

        With :attr:`prediction` ``"clean"`` the transformer's output is the clean latents ``x̂_0`` (plus the anchor
        ``a`` with ``anchor_mode`` ``"warp"``), and the velocity returned is ``(x_t − x̂_0) / max(t, 1/64)``; the loss
        stays the velocity MSE (the "x-prediction, v-loss" of Li & He 2025, "Back to Basics: Let Denoising Generative
        Models Denoise"). A velocity has the full dimension of a token's noise (``C × 2 × 2`` values: 384 for 96
        channels), more than a narrow transformer is wide; clean latents lie on a lower-dimensional set. With the
        anchor, a network that outputs zero returns the warp where it sees and the latent mean in the holes.

        With :attr:`prediction` ``"edm"`` the transformer reads ``y_t`` (the residual's noisy state with the anchor,
        else ``x_t``) and its output ``F`` gives ``ŷ_0 = c_skip·y_t + c_out·F`` with Karras et al.'s (2022, "EDM")
        preconditioning for this path and unit data variance: ``D = (1 − t)² + t²``, ``c_skip = (1 − t)/D``,
        ``c_out = t/√D``. At ``t → 0`` the noisy input itself is the estimate (nothing to copy through the
        transformer's width, which a clean prediction must), at ``t = 1`` ``F`` is the clean prediction, and ``F``'s
        target has unit variance at every ``t``. The returned velocity ``(y_t − ŷ_0)/t − a`` is computed in closed
        form, ``((2t − 1)/D)·y_t − F/√D − a``, finite at ``t = 0``; the velocity loss weighs ``F``'s error by
        ``1/D ∈ [1, 2]``. Measured worse than ``"clean"`` on 96-channel latents (a CPU probe: 12.1 against 19.5 dB,
        docs/benchmarks.md): at middle ``t``, ``F`` must cancel the noise in ``c_skip·y_t``, a target as wide as the
        noise.

        With :attr:`anchor_mode` ``"filled"`` the anchor is the filled warp's latents everywhere (:meth:`anchor`),
        the same residual flow otherwise.

        With :attr:`generated_channels` ``K < C`` the transformer reads and predicts only the leading ``K``
        channels as above; the trailing ``C − K`` get the velocity of the straight path to the anchor,
        ``(x_t − a)/max(t, 1/64)`` (zero where the warp does not fully see a cell, unless the anchor is filled).

        Args:
            noisy: ``x_t`` ``[B, C, t, h, w]`` normalised latents (``h``, ``w`` even: patch 2 × 2).
            t: flow time ``[B]`` (or a scalar) in ``[0, 1]``; 0 = clean, 1 = noise.
            conditions: ``B`` trajectories' warp latents ``[B, C, t, h, w]`` and masks ``[B, 1, t, h, w]``.
            context: optional cross-attention context ``[B or 1, N, text_embed_dim]``.
        """
        c = self.latent_channels
        if noisy.dim() != 5 or noisy.shape[1] != c:
            raise ValueError(f"noisy latents must be [B, {c}, t, h, w], got {tuple(noisy.shape)}")
        if conditions.latents.shape != noisy.shape:
            raise ValueError(f"condition latents {tuple(conditions.latents.shape)} do not match the noisy "
                              f"latents {tuple(noisy.shape)}")
        B, _, T, H, W = noisy.shape
        k = self.generated_channels
        ph, pw = self.config.patch_size[1:]
        if H % ph or W % pw:
            raise ConfigError(f"latent size {H}x{W} must be a multiple of the patch size {ph}x{pw}")
        dtype = self.dtype
        t = torch.as_tensor(t, dtype=torch.float32, device=noisy.device).reshape(-1).expand(B)
        full_x_t = noisy.float()
        a_all = self.anchor(conditions).float() if self.anchor_mode != "none" or k < c else None
        a = a_all[:, :k] if a_all is not None and self.anchor_mode != "none" else None
        noisy = noisy[:, :k]
        x_t = noisy.float()
        if a is not None and self.prediction in ("velocity", "edm"):
            # the flow of the residual y = x − a (a = the warp anchor): y_t = x_t − (1 − t)·a, v_x = v_y − a
            noisy = x_t - (1.0 - t).view(B, 1, 1, 1, 1) * a
        x = torch.cat([noisy, conditions.latents, conditions.mask_latents], dim=1).to(dtype)
        cond_mask = torch.zeros(B, 1, T, H, W, device=noisy.device, dtype=dtype)
        ctx = self.null_context if context is None else context.to(self.device, dtype)
        ctx = ctx.expand(B, -1, -1) if ctx.shape[0] == 1 else ctx
        padding = None
        if self.config.concat_padding_mask:
            _ensure_padding_resize()
            padding = torch.zeros(1, 1, H, W, device=noisy.device, dtype=dtype)
        out = self.transformer(hidden_states=x, timestep=(t * TIME_SCALE).to(dtype), encoder_hidden_states=ctx,
                               condition_mask=cond_mask, padding_mask=padding, return_dict=False)[0]
        if self.prediction == "clean":  # x̂_0 (plus the anchor) → the velocity of the straight path through it
            x0 = out.float() if a is None else out.float() + a
            v = (x_t - x0) / t.clamp_min(CLEAN_T_MIN).view(B, 1, 1, 1, 1)
        elif self.prediction == "edm":  # v_y = ((2t − 1)/D)·y_t − F/√D (ŷ_0 = c_skip·y_t + c_out·F), v_x = v_y − a
            tt = t.view(B, 1, 1, 1, 1)
            d = (1.0 - tt) ** 2 + tt ** 2
            v = ((2.0 * tt - 1.0) / d) * noisy.float() - out.float() / d.sqrt()
            v = v if a is None else v - a
        else:
            v = out.float() if a is None else out.float() - a
        if k == c:
            return v
        # the channels not generated: the straight path to the anchor (x̂_0 = a, whatever the noise)
        rest = (full_x_t[:, k:] - a_all[:, k:]) / t.clamp_min(CLEAN_T_MIN).view(B, 1, 1, 1, 1)
        return torch.cat([v, rest], dim=1)
