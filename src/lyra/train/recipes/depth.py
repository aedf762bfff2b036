"""Train :class:`~lyra.teacher.depth_net.TinyDepthNet` on procedural worlds: ``python -m lyra.train.recipes.depth``.

Data: every frame of a procedural world example (the input view and the 6 × (T − 1) trajectory
frames, with exact z-depth) is a training image. A pool of ``--pool-worlds`` rendered worlds is held on
the training device and refreshed round-robin (``--refresh-count`` worlds every ``--refresh-every``
steps); each batch draws random frames of random pool worlds, flips half of them horizontally and
jitters brightness and colour balance; with ``--augment`` (the default) it is also re-framed (other aspect
ratios and focal lengths) and re-photographed (gamma, contrast, saturation, white balance, vignetting, blur,
noise): :mod:`lyra.train.recipes.depth_augment`. Everything follows from the batch index (exact resume).
``--world-style photo`` trains on the photo-style worlds (:mod:`lyra.world.photo`: photo textures, soft shadows,
indirect light, glossy and glass-like surfaces, thin structures, developed by a camera model); the held-out test
worlds stay classic (the benchmark every record quotes).
``--init-from DIR`` starts from an exported net (e.g. the shipped ``src/lyra/weights/depth_tiny``).

Loss, on the pixels with a finite depth (the sky is masked out):

* scale-invariant log loss ``sqrt(mean(d²) − λ·mean(d)²)`` with ``d = log ẑ − log z`` per image
  (``λ = 0.85``: mostly shape, partly scale — the worlds have a metric scale to learn);
* gradient matching: L1 of the x/y differences of ``d`` at 4 scales (sharp depth edges);
* confidence: binary cross-entropy of the confidence logit against ``max(ẑ/z, z/ẑ) < 1.25``
  (0 on the sky).

Evaluation on held-out *test* worlds (``lyra.world`` test split): the input view and the last frame
of each trajectory; AbsRel, δ < 1.25 (also 1.25², 1.25³), RMSE of log depth, and AbsRel after
median scaling — per image, then averaged.

Each invocation trains until ``--steps`` (or ``--max-minutes``), checkpoints (``--resume`` continues),
and exports ``model.safetensors`` (fp16) + ``config.json`` + ``training_record.json`` to ``--export-to``
(default ``OUT/export``); ship them in ``src/lyra/weights/depth_tiny``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lyra.errors import ConfigError
from lyra.seeds import mix_seed
from lyra.teacher.depth_net import WEIGHTS_NAME, DepthNetConfig, TinyDepthNet
from lyra.train import IndexedBatches, Trainer
from lyra.train.recipe import export_and_test, export_due, final_weights, fit, start_run, training_record
from lyra.train.recipes.depth_augment import AugmentSettings, reframe, rephotograph
from lyra.train.runtime import add_optimizer_arguments, add_run_arguments, training_main

#: Seeds of the depth network's training worlds start here (inside lyra.world's train split).
DEPTH_SEED_BASE = 1_500_000
DELTA = 1.25


# ---------------------------------------------------------------------------------------- data
def world_frames(seed: int, preset: str, device: str, split_frames: bool = True,
                 style: str = "classic") -> tuple[Tensor, Tensor]:
    """All distinct frames of world ``seed`` (``style``: ``classic`` or ``photo``): images ``[F, 3, H, W]`` and
    z-depths ``[F, H, W]`` (inf = sky).

    ``F = 1 + 6 (T − 1)``: the input view, then frames 1.. of every trajectory.
    """
    from lyra.world import make_example

    ex = make_example(seed, preset=preset, device=device, style=style)
    if not split_frames:
        return ex.image[None], ex.depth[None]
    images = torch.cat([ex.image[None], ex.videos[:, 1:].flatten(0, 1)])
    depths = torch.cat([ex.depth[None], ex.depths[:, 1:].flatten(0, 1)])
    return images, depths


@dataclass
class DepthFrames:
    """``make_batch(index) -> {"image": [B, 3, H, W], "depth": [B, H, W]}`` for :class:`~lyra.train.IndexedBatches`.

    Pool slot ``s`` holds world generation ``g(s, index)``; refresh ``r`` (at batch index
    ``r · refresh_every``) re-renders slots ``(r − 1)·c … r·c − 1`` (mod pool size). World seeds:
    ``DEPTH_SEED_BASE + seed·10_000_019 + generation·pool_worlds + slot``.
    """

    batch_size: int
    seed: int = 0
    device: str = "cpu"
    preset: str = "tiny"
    pool_worlds: int = 48
    refresh_every: int = 4
    refresh_count: int = 1
    flip: bool = True
    jitter: float = 0.15  # brightness ± jitter, per-channel gain ± jitter / 2
    augment: AugmentSettings | None = None  # camera + photometric augmentation (None: off)
    style: str = "classic"  # world style of the training worlds (lyra.world.photo)

    def __post_init__(self) -> None:
        if self.pool_worlds < 1 or self.refresh_every < 1 or self.refresh_count < 0:
            raise ConfigError("pool_worlds and refresh_every must be >= 1, refresh_count >= 0")
        self._pool: dict[int, tuple[int, Tensor, Tensor]] = {}

    def _generation(self, slot: int, index: int) -> int:
        touched = (index // self.refresh_every) * self.refresh_count
        full, rest = divmod(touched, self.pool_worlds)
        return full + (1 if slot < rest else 0)

    def world_seed(self, slot: int, generation: int) -> int:
        return DEPTH_SEED_BASE + self.seed * 10_000_019 + generation * self.pool_worlds + slot

    def _world(self, slot: int, index: int) -> tuple[Tensor, Tensor]:
        seed = self.world_seed(slot, self._generation(slot, index))
        held = self._pool.get(slot)
        if held is None or held[0] != seed:
            style = {} if self.style == "classic" else {"style": self.style}
            images, depths = world_frames(seed, self.preset, self.device, **style)
            held = (seed, images.to(self.device, torch.float16), depths.to(self.device, torch.float32))
            self._pool[slot] = held
        return held[1], held[2]

    def prefill(self, index: int = 0) -> None:
        """Render every pool slot's world for batch ``index`` now (before the trainer times its first steps for
        ``--time-budget``: a pool filled lazily made those steps 4× slower than the rest and the budget too short)."""
        for slot in range(self.pool_worlds):
            self._world(slot, index)

    def __call__(self, index: int) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(mix_seed(self.seed, index, 7))
        images, depths = [], []
        for _ in range(self.batch_size):
            slot = int(torch.randint(self.pool_worlds, (1,), generator=g))
            im, dp = self._world(slot, index)
            f = int(torch.randint(im.shape[0], (1,), generator=g))
            images.append(im[f].float())
            depths.append(dp[f])
        image, depth = torch.stack(images), torch.stack(depths)
        B = image.shape[0]
        u = torch.rand(B, 5, generator=g).to(image.device)
        if self.flip:
            flip = (u[:, 0] < 0.5)
            image = torch.where(flip[:, None, None, None], image.flip(-1), image)
            depth = torch.where(flip[:, None, None], depth.flip(-1), depth)
        if self.jitter > 0:
            bright = 1 + self.jitter * (2 * u[:, 1] - 1)
            gain = 1 + 0.5 * self.jitter * (2 * u[:, 2:5] - 1)
            image = (image * (bright[:, None] * gain)[:, :, None, None]).clamp(0, 1)
        if self.augment is not None:
            image, depth = reframe(image, depth, g, self.augment)
            image = rephotograph(image, g, self.augment)
        return {"image": image.contiguous(), "depth": depth.contiguous()}


# ---------------------------------------------------------------------------------------- loss
def depth_loss(model: nn.Module, batch: dict[str, Tensor], lam: float = 0.85, grad_weight: float = 0.5,
               conf_weight: float = 0.1, scales: int = 4) -> tuple[Tensor, dict[str, Tensor]]:
    """Scale-invariant log loss + gradient matching + confidence BCE (see the module doc)."""
    log_z, logit = model(batch["image"], raw=True)
    z = batch["depth"].to(log_z)
    valid = torch.isfinite(z) & (z > 0)
    d = torch.where(valid, log_z - torch.log(torch.where(valid, z, torch.ones_like(z))), torch.zeros_like(z))
    n = valid.sum((1, 2)).clamp_min(1)
    mean_d = d.sum((1, 2)) / n
    mean_d2 = d.square().sum((1, 2)) / n
    silog = torch.sqrt((mean_d2 - lam * mean_d.square()).clamp_min(0) + 1e-8).mean()
    grad = log_z.new_zeros(())
    for k in range(scales):
        s = 2**k
        dk, vk = d[:, ::s, ::s], valid[:, ::s, ::s]
        vx = vk[:, :, 1:] & vk[:, :, :-1]
        vy = vk[:, 1:, :] & vk[:, :-1, :]
        gx = (dk[:, :, 1:] - dk[:, :, :-1]).abs() * vx
        gy = (dk[:, 1:, :] - dk[:, :-1, :]).abs() * vy
        grad = grad + (gx.sum() + gy.sum()) / (vx.sum() + vy.sum()).clamp_min(1)
    grad = grad / scales
    target = (valid & (d.detach().abs() < math.log(DELTA))).to(logit.dtype)
    conf = F.binary_cross_entropy_with_logits(logit, target)
    loss = silog + grad_weight * grad + conf_weight * conf
    with torch.no_grad():
        zp = log_z.detach().exp()
        absrel = ((zp - z).abs() / z)[valid].mean() if valid.any() else log_z.new_zeros(())
        delta1 = target.sum() / valid.sum().clamp_min(1)
    return loss, {"silog": silog.detach(), "grad": grad.detach(), "conf_bce": conf.detach(),
                  "absrel": absrel, "delta1": delta1}


# ---------------------------------------------------------------------------------------- evaluation
def depth_metrics(pred: Tensor, gt: Tensor) -> dict[str, float]:
    """AbsRel, δ<1.25^k, RMSE(log), median-scaled AbsRel of ``pred`` vs ``gt`` ``[H, W]`` (finite gt > 0)."""
    valid = torch.isfinite(gt) & (gt > 0)
    p, g = pred[valid].double().clamp_min(1e-6), gt[valid].double()
    ratio = torch.maximum(p / g, g / p)
    ps = p * (g.median() / p.median())
    return {
        "absrel": float(((p - g).abs() / g).mean()),
        "delta1": float((ratio < DELTA).double().mean()),
        "delta2": float((ratio < DELTA**2).double().mean()),
        "delta3": float((ratio < DELTA**3).double().mean()),
        "rmse_log": float((p.log() - g.log()).square().mean().sqrt()),
        "absrel_median_scaled": float(((ps - g).abs() / g).mean()),
    }


@torch.no_grad()
def evaluate(net: TinyDepthNet, images: Tensor, depths: Tensor, batch: int = 16) -> dict[str, float]:
    """Mean of :func:`depth_metrics` over ``images`` ``[N, 3, H, W]`` / ``depths`` ``[N, H, W]``."""
    net.eval()
    sums: dict[str, float] = {}
    dev = next(net.parameters()).device
    for i in range(0, images.shape[0], batch):
        res = net(images[i:i + batch].to(dev, torch.float32))
        for pred, gt in zip(res.depth, depths[i:i + batch].to(dev), strict=True):
            for k, v in depth_metrics(pred.float(), gt.float()).items():
                sums[k] = sums.get(k, 0.0) + v
    n = images.shape[0]
    return {k: v / n for k, v in sums.items()} | {"images": n}


def test_set(count: int, preset: str, device: str) -> tuple[Tensor, Tensor, list[int]]:
    """Held-out test images: for each of the first ``count`` test worlds, the input view and the last
    frame of each trajectory (7 images). Returns images, depths and the world seeds."""
    from lyra.world import make_example, split_seeds

    seeds = list(split_seeds("test")[:count])
    ims, dps = [], []
    for s in seeds:
        ex = make_example(s, preset=preset, device=device)
        ims += [ex.image[None], ex.videos[:, -1]]
        dps += [ex.depth[None], ex.depths[:, -1]]
    return torch.cat(ims).cpu(), torch.cat(dps).cpu(), seeds


# ---------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lyra.train.recipes.depth", description=__doc__.split("\n")[0])
    add_run_arguments(p, export_reserve=1.0)
    p.add_argument("--config", default=None, metavar="JSON",
                   help="architecture overrides (DepthNetConfig fields) as a JSON file")
    p.add_argument("--world-preset", default="tiny", help="lyra.world preset (sets the working resolution)")
    p.add_argument("--world-style", default="classic", choices=("classic", "photo"),
                   help="style of the training worlds (photo: lyra.world.photo); the test worlds stay classic")
    p.add_argument("--batch-size", type=int, default=None, help="images per step (default 32 on CUDA, 4 on CPU)")
    add_optimizer_arguments(p, lr=1e-3, warmup=300, min_lr_ratio=0.02, weight_decay=1e-4)
    p.add_argument("--lam", type=float, default=0.85, help="λ of the scale-invariant log loss")
    p.add_argument("--grad-weight", type=float, default=0.5, help="weight of the gradient-matching term")
    p.add_argument("--conf-weight", type=float, default=0.1, help="weight of the confidence BCE")
    p.add_argument("--pool-worlds", type=int, default=48, help="worlds held in the training pool")
    p.add_argument("--refresh-every", type=int, default=4, help="steps between pool refreshes")
    p.add_argument("--refresh-count", type=int, default=1, help="worlds re-rendered per refresh")
    p.add_argument("--ckpt-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--test-worlds", type=int, default=32, help="held-out test worlds (7 images each)")
    p.add_argument("--export-to", default=None, metavar="DIR", help="export folder (default OUT/export)")
    p.add_argument("--no-export", action="store_true", help="skip the export at the end of this invocation")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="re-frame (aspect, zoom) and re-photograph (exposure, colour, blur, noise) each batch")
    p.add_argument("--init-from", default=None, metavar="DIR",
                   help="start from an exported depth net (config.json + model.safetensors), e.g. the shipped one; "
                        "a resumed checkpoint overrides it")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even where CUDA is present")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _net_config(spec: str | None, preset: str) -> DepthNetConfig:
    from lyra.world import get_preset

    wp = get_preset(preset)
    overrides: dict[str, Any] = {}
    if spec:
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"--config {spec}: no such JSON file")
        try:
            overrides = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: invalid JSON ({e})") from None
    cfg = DepthNetConfig.from_dict({**DepthNetConfig().to_dict(), "height": wp.height, "width": wp.width,
                                    "fov_y_deg": wp.fov_y_deg, **overrides})
    if (cfg.height, cfg.width) != (wp.height, wp.width):
        raise ConfigError(f"the net's working resolution {cfg.height}x{cfg.width} must be the world preset's "
                          f"{wp.height}x{wp.width}")
    return cfg


def main(argv: list[str] | None = None) -> int:
    """Entry point (``argv`` defaults to ``sys.argv[1:]``)."""
    return training_main(build_parser(), run, "python -m lyra.train.recipes.depth", "lyra train_depth", argv)


def run(args: argparse.Namespace, t_process: float | None = None, command: str | None = None) -> int:
    """Train, checkpoint and export with parsed options (the skeleton: :mod:`lyra.train.recipe`)."""
    rr = start_run(args, t_process, command)
    batch_size = args.batch_size or (32 if rr.cuda else 4)
    net_cfg = _net_config(args.config, args.world_preset)
    torch.manual_seed(args.seed)
    net = TinyDepthNet(net_cfg)
    if args.init_from:
        init = TinyDepthNet.from_pretrained(args.init_from)
        if init.config.to_dict() != net_cfg.to_dict():
            raise ConfigError(f"--init-from {args.init_from}: its architecture differs from this run's (--config)")
        net.load_state_dict(init.state_dict())
        print(f"initial weights: {args.init_from} (a resumed checkpoint overrides them)", flush=True)
    augment = AugmentSettings() if args.augment else None
    data = DepthFrames(batch_size=batch_size, seed=args.seed, device=rr.device, preset=args.world_preset,
                       pool_worlds=args.pool_worlds, refresh_every=args.refresh_every,
                       refresh_count=args.refresh_count, augment=augment, style=args.world_style)
    cfg = rr.config(
        extra={"net_config": net_cfg.to_dict(), "batch_size": batch_size, "lam": args.lam,
               "grad_weight": args.grad_weight, "conf_weight": args.conf_weight, "init_from": args.init_from,
               "augment": augment.to_dict() if augment else None,
               "data": {"preset": args.world_preset, "style": args.world_style, "pool_worlds": args.pool_worlds,
                        "refresh_every": args.refresh_every, "refresh_count": args.refresh_count}},
    )
    lam, gw, cw = args.lam, args.grad_weight, args.conf_weight

    def loss_fn(m: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        return depth_loss(m, batch, lam=lam, grad_weight=gw, conf_weight=cw)

    trainer = Trainer(net, loss_fn, IndexedBatches(data), cfg)
    if args.time_budget is not None:
        data.prefill(trainer.step)
    result = fit(rr, trainer)
    if not export_due(rr, trainer):
        return 0

    final = final_weights(trainer, TinyDepthNet(net_cfg))
    record = training_record(rr, trainer, result, "lyra TinyDepthNet (U-Net, metric log-depth + confidence)",
                             final.num_parameters(), {
        "config": net_cfg.to_dict(),
        "batch_size": batch_size,
        "loss": {"silog_lambda": args.lam, "gradient_matching": args.grad_weight,
                 "confidence_bce": args.conf_weight, "sky": "masked (infinite depth)"},
        "data": {
            "world_preset": args.world_preset, "world_style": args.world_style, "seed": args.seed,
            "train_world_seeds": f"{data.world_seed(0, 0)} + generation*{args.pool_worlds} + slot; pool "
                                 f"{args.pool_worlds}, {args.refresh_count} re-rendered every "
                                 f"{args.refresh_every} steps",
            "frames": "every frame of each world (input view + 6 trajectories), horizontal flips, colour jitter",
            "augment": augment.to_dict() if augment else None,
        },
        "init_from": args.init_from,
    })
    export_dir = rr.export_dir

    def test(reloaded: TinyDepthNet) -> dict[str, Any]:
        images, depths, seeds = test_set(args.test_worlds, args.world_preset, rr.device)
        return {"test": {"split": "test", "world_seeds": f"{seeds[0]}..{seeds[-1]}" if seeds else None,
                         "frames": "input view + last frame of each trajectory",
                         **evaluate(reloaded, images, depths), "precision": "fp16 weights, fp32 compute"},
                "weights": {"file": WEIGHTS_NAME, "bytes": (export_dir / WEIGHTS_NAME).stat().st_size}}

    export_and_test(record, lambda rec: final.save_pretrained(export_dir, torch.float16, rec),
                    lambda: TinyDepthNet.from_pretrained(export_dir, device=rr.device), test)
    t = record["test"]
    print(f"exported {export_dir}: test AbsRel {t['absrel']:.4f}, delta<1.25 {t['delta1']:.4f}, "
          f"median-scaled AbsRel {t['absrel_median_scaled']:.4f} on {t['images']} images", flush=True)
    return 0

if __name__ == "__main__":
    sys.exit(main())
