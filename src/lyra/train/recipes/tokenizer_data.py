"""Training and evaluation videos for the tokenizer, as deterministic functions of an index.

Two sources, both giving videos ``[B, T, 3, H, W]`` in [0, 1] on the requested device:

* ``world`` — the procedural worlds of :mod:`lyra.world` (the embedded training domain): each world
  gives six camera trajectories; the trainer draws trajectories from a pool of rendered worlds that is
  refreshed round-robin, so rendering is amortised while the data keeps changing. The pool's content
  at every batch index follows from the index alone (exact resume).
* ``synthetic`` — moving textured shapes over a drifting textured background, rendered in closed form
  (no dependency, fast on any device): for development, tests, and as a fallback.

Augmentations (both sources): horizontal flip and time reversal, each with probability 1/2; optionally
(``colour_aug``) a hue rotation and saturation gain of a share of the videos, so that saturated colours,
which the worlds' muted palettes lack, are seen in training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lyra.errors import ConfigError
from lyra.seeds import mix_seed

#: Seeds of training worlds start here; evaluation uses the world module's test split.
TRAIN_SEED_BASE = 1_000_000


def synthetic_videos(seed: int, n: int, frames: int, height: int, width: int,
                     device: torch.device | str = "cpu", shapes: int = 6) -> Tensor:
    """``n`` random videos ``[n, frames, 3, height, width]`` in [0, 1], a function of ``seed``.

    Each: a two-colour gradient background with a sinusoidal texture, panning; ``shapes`` ellipses and
    rectangles with their own stripe textures and colours, moving linearly; edges anti-aliased.
    """
    g = torch.Generator().manual_seed(int(seed))

    def u(*shape: int, lo: float = 0.0, hi: float = 1.0) -> Tensor:
        return (lo + (hi - lo) * torch.rand(*shape, generator=g)).to(device)

    k = shapes
    t = torch.linspace(0.0, 1.0, frames, device=device).view(1, frames, 1, 1, 1)  # [1,T,1,1,1]
    aspect = width / height
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / height  # square pixels
    y = ys.view(1, 1, 1, height, 1)
    x = xs.view(1, 1, 1, 1, width)
    px = 1.0 / height  # one pixel in these units

    # Background: gradient between two colours along a random direction + a drifting texture.
    pan = u(n, 2, lo=-0.3, hi=0.3)
    bx = x - pan[:, 0].view(n, 1, 1, 1, 1) * t
    by = y - pan[:, 1].view(n, 1, 1, 1, 1) * t
    ang = u(n, lo=0, hi=2 * math.pi).view(n, 1, 1, 1, 1)
    ramp = ((bx * torch.cos(ang) + by * torch.sin(ang)) / (1 + aspect) + 0.5).clamp(0, 1)
    c0, c1 = u(n, 3).view(n, 1, 3, 1, 1), u(n, 3).view(n, 1, 3, 1, 1)
    freq = u(n, 2, lo=2.0, hi=24.0)
    tex = torch.sin(2 * math.pi * (freq[:, 0].view(n, 1, 1, 1, 1) * bx)) * torch.sin(
        2 * math.pi * (freq[:, 1].view(n, 1, 1, 1, 1) * by))
    video = c0 + (c1 - c0) * ramp + 0.15 * u(n, lo=0, hi=1).view(n, 1, 1, 1, 1) * tex  # [n,T,3,H,W]

    # Shapes, painted back to front.
    centre = torch.stack([u(n, k, lo=0, hi=aspect), u(n, k)], -1)  # [n,k,2]
    vel = u(n, k, 2, lo=-0.4, hi=0.4)
    radius = u(n, k, 2, lo=0.04, hi=0.3)
    kind = u(n, k) < 0.5  # True: ellipse, else rectangle
    col_a, col_b = u(n, k, 3), u(n, k, 3)
    sfreq = u(n, k, lo=3.0, hi=40.0)
    sang = u(n, k, lo=0, hi=math.pi)
    for j in range(k):
        cx = (centre[:, j, 0].view(n, 1, 1, 1, 1) + vel[:, j, 0].view(n, 1, 1, 1, 1) * t)
        cy = (centre[:, j, 1].view(n, 1, 1, 1, 1) + vel[:, j, 1].view(n, 1, 1, 1, 1) * t)
        rx, ry = radius[:, j, 0].view(n, 1, 1, 1, 1), radius[:, j, 1].view(n, 1, 1, 1, 1)
        dx, dy = (x - cx) / rx, (y - cy) / ry
        ell = torch.sqrt(dx * dx + dy * dy)
        rect = torch.maximum(dx.abs(), dy.abs())
        is_ell = kind[:, j].view(n, 1, 1, 1, 1)
        dist = torch.where(is_ell, ell, rect)  # 1 on the boundary
        scale = torch.minimum(rx, ry)
        alpha = torch.sigmoid((1.0 - dist) * scale / px * 2.0)  # about one pixel of anti-aliasing
        a = sang[:, j].view(n, 1, 1, 1, 1)
        stripes = 0.5 + 0.5 * torch.sin(2 * math.pi * sfreq[:, j].view(n, 1, 1, 1, 1)
                                        * ((x - cx) * torch.cos(a) + (y - cy) * torch.sin(a)))
        colour = col_a[:, j].view(n, 1, 3, 1, 1) + (col_b[:, j] - col_a[:, j]).view(n, 1, 3, 1, 1) * stripes
        video = video + alpha * (colour - video)
    return video.clamp(0.0, 1.0)


def augment(videos: Tensor, seed: int, colour: float = 0.0) -> Tensor:
    """Random horizontal flips and time reversals (each with probability 1/2 per video); with ``colour`` > 0,
    also a colour augmentation of that share of the videos (:func:`colour_augment`).

    ``colour = 0`` draws exactly the random numbers it drew before the colour augmentation existed.
    """
    g = torch.Generator().manual_seed(int(seed))
    flip = torch.rand(videos.shape[0], generator=g) < 0.5
    rev = torch.rand(videos.shape[0], generator=g) < 0.5
    out = videos.clone()
    if flip.any():
        idx = flip.nonzero().flatten().to(videos.device)
        out[idx] = out[idx].flip(-1)
    if rev.any():
        idx = rev.nonzero().flatten().to(videos.device)
        out[idx] = out[idx].flip(1)
    if colour > 0:
        out = colour_augment(out, int(torch.randint(2**62, (1,), generator=g)), colour)
    return out


#: Saturation gain range of :func:`colour_augment` (1 = unchanged; clamping makes pure primaries).
SATURATION_GAIN = (1.0, 2.5)


def colour_augment(videos: Tensor, seed: int, share: float = 0.5) -> Tensor:
    """Rotate the hue and raise the saturation of a random ``share`` of the videos ``[B, T, 3, H, W]``.

    Why: the procedural worlds' palettes are muted (HSV saturation ≤ 0.9, mostly earth tones), so a tokenizer
    trained on them alone never sees saturated reds, greens or blues and maps them into its training gamut
    (a red apple comes back brown). Per chosen video: a rotation of the RGB cube about the grey axis by a
    uniform random angle (hue shift that keeps ``r + g + b``), then the chroma (pixel − its grey mean) scaled by
    a gain drawn from :data:`SATURATION_GAIN`, clamped to [0, 1] (which makes fully saturated colours).
    """
    g = torch.Generator().manual_seed(int(seed))
    b = videos.shape[0]
    chosen = torch.rand(b, generator=g) < share
    angle = torch.rand(b, generator=g) * 2 * math.pi
    lo, hi = SATURATION_GAIN
    gain = lo + (hi - lo) * torch.rand(b, generator=g)
    if not chosen.any():
        return videos
    idx = chosen.nonzero().flatten()
    x = videos[idx.to(videos.device)]  # [n, T, 3, H, W]
    k = torch.full((3,), 1.0 / math.sqrt(3.0), dtype=torch.float64)
    kx = torch.tensor([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]], dtype=torch.float64)
    mats = []
    for a, s in zip(angle[idx].double(), gain[idx].double(), strict=True):
        rot = torch.eye(3, dtype=torch.float64) + torch.sin(a) * kx + (1 - torch.cos(a)) * (kx @ kx)  # Rodrigues
        grey = torch.full((3, 3), 1.0 / 3.0, dtype=torch.float64)
        mats.append(grey + s * (rot - grey))  # rot keeps the grey axis: scale only the chroma part
    m = torch.stack(mats).to(videos.device, videos.dtype)  # [n, 3, 3]
    y = torch.einsum("nij,ntjhw->ntihw", m, x).clamp(0.0, 1.0)
    out = videos.clone()
    out[idx.to(videos.device)] = y
    return out


def colour_patch_videos(frames: int = 17, height: int = 176, width: int = 320, device: torch.device | str = "cpu",
                        ) -> tuple[Tensor, Tensor]:
    """Held-out saturated colour patches: videos ``[4, frames, 3, H, W]`` and patch masks ``[4, 1, 1, H, W]``.

    A 3 × 6 grid of flat patches on a mid-grey background, panning one pixel per frame (each video its own
    direction). Colours: 12 hues at full HSV saturation and value, then the pure primaries at value 0.6 and
    three named reds of the defect report (apple (0.8, 0.08, 0.08), bus (0.86, 0.12, 0.1), saucer
    (0.7, 0.1, 0.12)). Masks keep the patch interiors (3 pixels in from the edges, for every frame), so
    colour difference there measures colour, not edges.
    """
    import colorsys

    colours = [colorsys.hsv_to_rgb(h / 12.0, 1.0, 1.0) for h in range(12)]
    colours += [(0.6, 0.0, 0.0), (0.0, 0.6, 0.0), (0.0, 0.0, 0.6), (0.8, 0.08, 0.08), (0.86, 0.12, 0.1),
                (0.7, 0.1, 0.12)]
    rows, cols = 3, 6
    ph, pw = height // rows, width // cols
    margin = max(4, frames)  # the pan stays inside the frame
    ys = torch.arange(height, device=device).view(height, 1)
    xs = torch.arange(width, device=device).view(1, width)
    dirs = [(1, 1), (-1, 1), (1, -1), (-1, -1)]
    vids, masks = [], []
    for dy, dx in dirs:
        video = torch.full((frames, 3, height, width), 0.5, device=device)
        inside = torch.ones(height, width, dtype=torch.bool, device=device)
        for t in range(frames):
            oy, ox = dy * t, dx * t
            lab = torch.full((height, width), -1, dtype=torch.long, device=device)
            for i in range(rows):
                for j in range(cols):
                    y0, x0 = i * ph + 3 + oy, j * pw + 3 + ox
                    y1, x1 = y0 + ph - 6, x0 + pw - 6
                    sel = (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)
                    lab[sel] = i * cols + j
            for n, c in enumerate(colours):
                sel = lab == n
                video[t, :, sel] = torch.tensor(c, device=device, dtype=video.dtype).view(3, 1)
            # interior: 3 px in from each patch edge, in every frame
            pad = torch.nn.functional.max_pool2d((lab < 0).float()[None, None], 7, stride=1, padding=3)[0, 0] > 0
            inside &= ~pad
        inside[:margin] = inside[-margin:] = False
        inside[:, :margin] = inside[:, -margin:] = False
        vids.append(video)
        masks.append(inside)
    return torch.stack(vids), torch.stack(masks).view(len(dirs), 1, 1, height, width)


def _world_api() -> Any:
    try:
        import lyra.world as world
    except ImportError as e:
        raise ConfigError(f"the procedural worlds (lyra.world) are not available: {e}; use --data synthetic") from e
    return world


def is_dynamic_world(seed: int, fraction: float) -> bool:
    """Whether training world ``seed`` moves (a fixed fraction of worlds, chosen by the seed)."""
    return (mix_seed(seed, 3) % 10_000) < fraction * 10_000


def sample_world_cpu(seed: int, preset: str, dynamic: bool) -> Any:
    """``lyra.world.sample_world`` (the CPU part of making an example; runs in worker processes)."""
    torch.set_num_threads(1)
    return _world_api().sample_world(seed, preset, dynamic)


def world_videos(seed: int, preset: str, device: torch.device | str, dynamic: bool = False,
                 sample: Any = None) -> Tensor:
    """The six trajectory videos ``[6, T, 3, H, W]`` of procedural world ``seed`` (rendered on ``device``)."""
    world = _world_api()
    if sample is None:
        sample = world.sample_world(seed, preset, dynamic)
    return world.render_samples([sample], device)[0].videos.to(device=device, dtype=torch.float32)


def test_world_seeds(count: int) -> list[int]:
    """Seeds of the first ``count`` held-out *test* worlds (lyra.world's test split)."""
    seeds = _world_api().split_seeds("test")
    if count > len(seeds):
        raise ConfigError(f"the test split holds {len(seeds)} worlds, asked for {count}")
    return list(seeds[:count])


@dataclass
class VideoBatches:
    """``make_batch(index) -> [B, T, 3, H, W]`` for :class:`lyra.train.IndexedBatches`.

    Args:
        source: ``"world"`` or ``"synthetic"``.
        batch_size, frames, height, width: batch geometry (world videos are cut to ``frames`` frames
            at a random start and must have ``height × width`` pixels).
        seed: base seed of everything random here.
        device: where videos are made (CUDA renders worlds on the GPU).
        pool_worlds: worlds held in the pool (``world`` source).
        refresh_every, refresh_count: every ``refresh_every`` batches, re-render ``refresh_count`` pool
            slots (round-robin) with new worlds.
        preset: world preset name.
        dynamic_fraction: share of training worlds with moving objects.
        workers: processes that prepare upcoming worlds on the CPU while the GPU trains (0: inline).
    """

    source: str
    batch_size: int
    frames: int = 17
    height: int = 176
    width: int = 320
    seed: int = 0
    device: str = "cpu"
    pool_worlds: int = 32
    refresh_every: int = 8
    refresh_count: int = 1
    preset: str = "tiny"
    dynamic_fraction: float = 0.25
    workers: int = 0  # processes preparing worlds (lyra.world.sample_world) ahead of rendering
    colour_aug: float = 0.0  # share of videos given a hue rotation + saturation gain (colour_augment)
    crop: tuple[int, int] | None = None  # random spatial crop (h, w) of every batch (cheaper steps, e.g. on a CPU)
    render: Callable[[int, str, str], Tensor] | None = None  # replaces lyra.world rendering (tests)

    def __post_init__(self) -> None:
        if self.source not in ("world", "synthetic"):
            raise ConfigError(f"unknown data source {self.source!r}; choose world or synthetic")
        self._pool: dict[int, tuple[int, Tensor]] = {}  # slot -> (world seed, videos [6,T,3,H,W] on device)
        self._futures: dict[int, Any] = {}  # world seed -> Future of its WorldSample
        self._executor: Any = None

    # Pool: refresh number r (at batch index r·refresh_every, r ≥ 1) re-renders slots
    # (r−1)·c … r·c−1 (mod P). Slot s therefore holds world generation ⌊(refreshes touching s)⌋.
    def _slot_generation(self, slot: int, index: int) -> int:
        p, c = self.pool_worlds, self.refresh_count
        refreshes = index // self.refresh_every  # refresh numbers 1..refreshes happened before `index`
        touched = refreshes * c  # total slot renders after the initial fill
        full, rest = divmod(touched, p)
        return full + (1 if slot < rest else 0)

    def world_seed(self, slot: int, generation: int) -> int:
        return TRAIN_SEED_BASE + self.seed * 10_000_019 + generation * self.pool_worlds + slot

    def _prefetch(self, index: int) -> None:
        """Start preparing the worlds of the current pool and of the next refreshes in worker processes."""
        if self.workers <= 0 or self.render is not None:
            return
        if self._executor is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            self._executor = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"))
        ahead = 2 + 2 * self.workers // max(1, self.refresh_count)  # refreshes to prepare in advance
        wanted = {self.world_seed(k, self._slot_generation(k, index)) for k in range(self.pool_worlds)}
        first = index // self.refresh_every + 1
        for r in range(first, first + ahead):  # refresh r re-renders slots (r-1)·c … r·c-1 (mod P)
            for j in range(self.refresh_count):
                slot = ((r - 1) * self.refresh_count + j) % self.pool_worlds
                wanted.add(self.world_seed(slot, self._slot_generation(slot, r * self.refresh_every)))
        for seed in [s for s in self._futures if s not in wanted]:  # superseded before use
            self._futures.pop(seed).cancel()
        held = {seed for seed, _ in self._pool.values()}
        for seed in sorted(wanted - held - set(self._futures)):
            self._futures[seed] = self._executor.submit(
                sample_world_cpu, seed, self.preset, is_dynamic_world(seed, self.dynamic_fraction))

    def _fill(self, slots: list[int], index: int) -> None:
        """Render the worlds that ``slots`` hold at batch ``index`` (those not already in the pool), in one
        batched call on the device."""
        todo = []
        for slot in dict.fromkeys(slots):
            seed = self.world_seed(slot, self._slot_generation(slot, index))
            held = self._pool.get(slot)
            if held is None or held[0] != seed:
                todo.append((slot, seed))
        if not todo:
            return
        if self.render is not None:
            rendered = [self.render(seed, self.preset, self.device) for _, seed in todo]
        else:
            world = _world_api()
            samples = []
            for _, seed in todo:
                future = self._futures.pop(seed, None)
                dynamic = is_dynamic_world(seed, self.dynamic_fraction)
                samples.append(future.result() if future is not None
                               else world.sample_world(seed, self.preset, dynamic))
            examples = world.render_samples(samples, self.device)
            rendered = [ex.videos.to(self.device, torch.float32) for ex in examples]
        for (slot, seed), videos in zip(todo, rendered, strict=True):
            if videos.shape[-2:] != (self.height, self.width) or videos.shape[1] < self.frames:
                raise ConfigError(
                    f"world videos are {tuple(videos.shape[1:])}; need ≥ {self.frames} frames of "
                    f"{self.height}×{self.width} (set --frames/--size to the world preset)"
                )
            self._pool[slot] = (seed, videos)

    def prefill(self, index: int = 0) -> int:
        """Render every pool slot's world for batch ``index`` now; returns how many worlds were rendered.

        Called before the trainer times its first steps for ``--time-budget``: filled lazily, the pool renders
        its worlds during the first batches, and a probe that times them fits too few steps into the budget (the
        depth recipe's pool had this bug). A no-op for the synthetic source."""
        if self.source != "world":
            return 0
        before = {slot: held[0] for slot, held in self._pool.items()}
        self._prefetch(index)
        group = max(1, self.batch_size)  # no more worlds in one render call than a batch can ask for
        for first in range(0, self.pool_worlds, group):
            self._fill(list(range(first, min(first + group, self.pool_worlds))), index)
        return sum(1 for slot, held in self._pool.items() if before.get(slot) != held[0])

    def close(self) -> None:
        """Stop the world-preparing processes."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
            self._futures.clear()

    def __call__(self, index: int) -> Tensor:
        g = torch.Generator().manual_seed(mix_seed(self.seed, index, 1))
        if self.source == "synthetic":
            videos = synthetic_videos(mix_seed(self.seed, index, 2), self.batch_size, self.frames,
                                      self.height, self.width, device=self.device)
        else:
            self._prefetch(index)
            slots = torch.randint(self.pool_worlds, (self.batch_size,), generator=g).tolist()
            self._fill(slots, index)
            out = []
            for slot in slots:
                traj = self._pool[slot][1]
                v = int(torch.randint(traj.shape[0], (1,), generator=g))
                start = int(torch.randint(traj.shape[1] - self.frames + 1, (1,), generator=g))
                out.append(traj[v, start:start + self.frames])
            videos = torch.stack(out)
        aug_seed = int(torch.randint(2**62, (1,), generator=g))
        if self.crop is not None:
            ch, cw = self.crop
            if ch > videos.shape[-2] or cw > videos.shape[-1]:
                raise ConfigError(f"crop {ch}x{cw} is larger than the videos ({videos.shape[-2]}x{videos.shape[-1]})")
            y0 = int(torch.randint(videos.shape[-2] - ch + 1, (1,), generator=g))
            x0 = int(torch.randint(videos.shape[-1] - cw + 1, (1,), generator=g))
            videos = videos[..., y0:y0 + ch, x0:x0 + cw]
        return augment(videos, aug_seed, self.colour_aug)
