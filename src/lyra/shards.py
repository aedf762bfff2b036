"""SDG shards: the self-describing files the teacher writes and the student trains on.

Layout of an SDG folder::

    OUT/
      sdg.json                      manifest (derivable from the shard headers: :func:`scan_manifest`)
      shard-000000.safetensors      samples [0·S, 1·S) of the planned range
      shard-000001.safetensors      samples [1·S, 2·S)
      ...

A shard is one ``safetensors`` file (no pickle) holding ``S`` samples stacked along the first axis.
With ``V`` trajectories (6) of ``T`` frames of ``H × W`` pixels and latents ``C × t × h × w`` (``C`` the
tokenizer's latent channels: 16 for the Cosmos tokenizer; one ``C`` in a shard set):

==============  ========================  =======  ============================================
key             shape                     dtype    content
==============  ========================  =======  ============================================
``latents``     ``[S, V, C, t, h, w]``    fp16     *raw* tokenizer latents of the teacher's videos
``rgb``         ``[S, V, T, H, W, 3]``    uint8    the tokenizer-decoded frames (student targets)
``K``           ``[S, V, T, 3, 3]``       fp32     intrinsics in pixels of ``W × H`` frames
``c2w``         ``[S, V, T, 4, 4]``       fp32     camera-to-world, OpenCV axes (x right, y down, z fwd)
``depth``       ``[S, V, T, H, W]``       fp16     depth estimate of the decoded frames (z-depth)
``image``       ``[S, H, W, 3]``          uint8    the teacher's input image
``input_depth`` ``[S, H, W]``             fp32     the input depth the teacher lifted (``inf`` = sky)
``gt_depth``    ``[S, V, T, H, W]``       fp16     optional: exact world z-depth (``inf`` = sky)
``plucker``     ``[S, V, 2C, t, h, w]``   fp16     optional (``lyra sdg --store-plucker``): the student's
                                                   Plücker latents of the cameras, through the SDG's tokenizer
==============  ========================  =======  ============================================

Dynamic scenes (format version 2, header ``dynamic: true``) add:

=======================  =====================  =======  ===================================================
key                      shape                  dtype    content
=======================  =====================  =======  ===================================================
``times``                ``[S, V, T]``          fp32     time in [0, 1] of frame ``f`` of trajectory ``v``
``input_video``          ``[S, T, H, W, 3]``    uint8    the teacher's input video (``image`` = its frame 0)
``input_video_depth``    ``[S, T, H, W]``       fp32     the per-frame depth the dynamic cache used
=======================  =====================  =======  ===================================================

and the header's ``directions`` says how the ``V`` trajectories are laid out: ``["forward"]`` — the ``V``
trajectories generated from the input video; ``["forward", "reversed"]`` (motion reversal) — views
``0 … V/2 − 1`` from the video, views ``V/2 … V − 1`` from the same video reversed in time (view ``V/2 + v``
has the cameras of view ``v``, and its frame ``f`` shows time ``t_{T−1−f}``). ``input_video`` is the forward
video in both cases. Version-1 shards (static) still load: their header reads as ``dynamic: false``.

The header (safetensors metadata) holds **one** key, ``lyra_sdg``, whose value is a canonical JSON
string (sorted keys): the ``safetensors`` writer stores metadata in a hash map whose order changes from
run to run, and a single key keeps shard files byte-identical for identical content. The JSON holds
``format``, ``format_version``, ``shard_index``, ``dynamic``, ``directions``, ``settings`` (everything that
defines the data set:
preset, source, sampling steps, seed, shard size, depth sources and the sha256 of the teacher,
tokenizer and depth weight files), ``sample_ids``, ``world_seeds`` and ``noise_seeds``.
A sample id is ``"{source}:{seed or index}:{trajectory set}"`` (e.g. ``world-train:1000003:world-gt``).
"""

from __future__ import annotations

import bisect
import collections
import datetime as _dt
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lyra.errors import ConfigError, FormatError, InputFileError, OutputPathError
from lyra.fileio import atomic_path

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "SdgSample",
    "ShardDataset",
    "ShardHeader",
    "check_settings",
    "compare_sets",
    "read_manifest",
    "read_shard",
    "read_shard_header",
    "sample_cameras",
    "scan_manifest",
    "shard_files",
    "shard_name",
    "write_manifest",
    "write_shard",
]

FORMAT = "lyra-sdg"
FORMAT_VERSION = 2
#: Format versions this lyra reads (1: static shards written before dynamic scenes existed).
READ_VERSIONS = (1, 2)
DIRECTIONS = ("forward", "reversed")
MANIFEST_NAME = "sdg.json"
HEADER_KEY = "lyra_sdg"
SHARD_RE = re.compile(r"^shard-(\d{6,})\.safetensors$")

#: Stored dtype of every key (``gt_depth`` is optional).
KEY_DTYPES: dict[str, torch.dtype] = {
    "latents": torch.float16,
    "rgb": torch.uint8,
    "K": torch.float32,
    "c2w": torch.float32,
    "depth": torch.float16,
    "image": torch.uint8,
    "input_depth": torch.float32,
    "gt_depth": torch.float16,
    "plucker": torch.float16,
    "times": torch.float32,
    "input_video": torch.uint8,
    "input_video_depth": torch.float32,
}
REQUIRED_KEYS = ("latents", "rgb", "K", "c2w", "depth", "image", "input_depth")
#: Keys every dynamic shard holds on top of :data:`REQUIRED_KEYS`.
DYNAMIC_KEYS = ("times", "input_video", "input_video_depth")


def shard_name(index: int) -> str:
    """File name of shard ``index`` (``shard-000012.safetensors``)."""
    return f"shard-{index:06d}.safetensors"


def shard_files(root: str | os.PathLike) -> dict[int, Path]:
    """The shard files in ``root`` by index (temporary files of interrupted writes are not listed)."""
    out: dict[int, Path] = {}
    for p in Path(root).iterdir():
        m = SHARD_RE.match(p.name)
        if m and p.is_file():
            out[int(m.group(1))] = p
    return dict(sorted(out.items()))


# ------------------------------------------------------------------------------------ one sample
@dataclass
class SdgSample:
    """One generated scene, as the teacher produced it (any float dtype; cast when written).

    Attributes:
        sample_id: ``"{source}:{seed or index}:{trajectory set}"``.
        world_seed: the procedural world's seed, or ``None`` for a user image.
        noise_seed: seed of the teacher's starting noise.
        latents: raw latents ``[V, C, t, h, w]``.
        rgb: decoded frames ``[V, T, H, W, 3]`` uint8.
        K: ``[V, T, 3, 3]``; c2w: ``[V, T, 4, 4]`` (OpenCV camera-to-world).
        depth: depth estimate of the decoded frames ``[V, T, H, W]``.
        image: the input image ``[H, W, 3]`` uint8.
        input_depth: the depth the teacher lifted the input with ``[H, W]``.
        gt_depth: exact world depth ``[V, T, H, W]`` or ``None``.
        plucker: the Plücker latents ``[V, 2C, t, h, w]`` of the cameras (:func:`lyra.student.plucker_latents`
            through the SDG's tokenizer), or ``None`` (the student's trainer then computes them).
        times: dynamic scenes: ``[V, T]`` time of every frame of every trajectory, else ``None``.
        input_video: dynamic: the input video ``[T, H, W, 3]`` uint8 (forward in time), else ``None``.
        input_video_depth: dynamic: its per-frame depth ``[T, H, W]`` (the one the teacher lifted), else ``None``.
    """

    sample_id: str
    world_seed: int | None
    noise_seed: int
    latents: Tensor
    rgb: Tensor
    K: Tensor
    c2w: Tensor
    depth: Tensor
    image: Tensor
    input_depth: Tensor
    gt_depth: Tensor | None = None
    times: Tensor | None = None
    input_video: Tensor | None = None
    input_video_depth: Tensor | None = None
    plucker: Tensor | None = None

    @property
    def dynamic(self) -> bool:
        return self.times is not None

    def tensors(self) -> dict[str, Tensor]:
        keys = REQUIRED_KEYS + tuple(k for k in ("gt_depth", "plucker") if getattr(self, k) is not None)
        if self.dynamic:
            missing = [k for k in DYNAMIC_KEYS if getattr(self, k) is None]
            if missing:
                raise ConfigError(f"sample {self.sample_id}: a dynamic sample needs {', '.join(missing)} too")
            keys += DYNAMIC_KEYS
        return {k: getattr(self, k) for k in keys}


# ------------------------------------------------------------------------------------ header
@dataclass
class ShardHeader:
    """The parsed ``lyra_sdg`` header of a shard (see the module doc)."""

    shard_index: int
    settings: dict[str, Any]
    sample_ids: list[str]
    world_seeds: list[int | None]
    noise_seeds: list[int]
    format_version: int = FORMAT_VERSION
    shapes: dict[str, list[int]] = field(default_factory=dict)
    dynamic: bool = False
    directions: list[str] = field(default_factory=lambda: ["forward"])

    def to_json(self) -> str:
        d = {"format": FORMAT, "format_version": self.format_version, "shard_index": self.shard_index,
             "settings": self.settings, "sample_ids": self.sample_ids, "world_seeds": self.world_seeds,
             "noise_seeds": self.noise_seeds, "dynamic": self.dynamic, "directions": self.directions}
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @property
    def num_samples(self) -> int:
        return len(self.sample_ids)

    @property
    def latent_channels(self) -> int | None:
        """``C`` of the shard's ``latents`` ``[S, V, C, t, h, w]`` (``None`` for a header built without shapes)."""
        lat = self.shapes.get("latents")
        return int(lat[2]) if lat and len(lat) == 6 else None


def _canonical(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples → lists, …), for comparisons."""
    return json.loads(json.dumps(obj, sort_keys=True))


def write_shard(path: str | os.PathLike, index: int, samples: Sequence[SdgSample], settings: dict[str, Any],
                directions: Sequence[str] = ("forward",)) -> Path:
    """Write ``samples`` as shard ``index`` to ``path``, atomically (temporary file + rename).

    All samples must have the same shapes; tensors are cast to the stored dtypes (:data:`KEY_DTYPES`)
    and moved to the CPU. Identical inputs give byte-identical files. Dynamic samples (with ``times``) make a
    dynamic shard; ``directions`` (``["forward"]`` or ``["forward", "reversed"]``) lays out their trajectories
    (module doc).
    """
    from safetensors.torch import save_file

    if not samples:
        raise ConfigError("a shard needs at least one sample")
    dynamic = samples[0].dynamic
    if any(s.dynamic != dynamic for s in samples):
        raise ConfigError(f"shard {index}: mixes dynamic and static samples")
    directions = list(directions)
    if directions not in (["forward"], list(DIRECTIONS)) or (not dynamic and directions != ["forward"]):
        raise ConfigError(f"shard {index}: directions must be ['forward'] or {list(DIRECTIONS)} (dynamic only), "
                          f"got {directions}")
    if len(directions) == 2 and samples[0].rgb.shape[0] % 2:
        raise ConfigError(f"shard {index}: motion reversal needs an even number of trajectories")
    keys = list(samples[0].tensors())
    stacked: dict[str, Tensor] = {}
    for k in keys:
        parts = []
        for s in samples:
            t = s.tensors().get(k)
            if t is None:
                raise ConfigError(f"sample {s.sample_id} lacks {k!r} while others have it")
            parts.append(t.detach().to("cpu", KEY_DTYPES[k]))
        shapes = {tuple(p.shape) for p in parts}
        if len(shapes) != 1:
            raise ConfigError(f"shard {index}: samples have different {k!r} shapes {sorted(shapes)}")
        stacked[k] = torch.stack(parts).contiguous()
    header = ShardHeader(index, _canonical(settings), [s.sample_id for s in samples],
                         [s.world_seed for s in samples], [int(s.noise_seed) for s in samples], dynamic=dynamic,
                         directions=directions)
    with atomic_path(path) as tmp:
        save_file(stacked, str(tmp), metadata={HEADER_KEY: header.to_json()})
    return Path(path)


def read_shard_header(path: str | os.PathLike) -> ShardHeader:
    """Parse and check the header of shard ``path`` without reading its tensors.

    Raises :class:`~lyra.errors.FormatError` when the file is not a readable lyra SDG shard of a
    supported version, or its tensors disagree with the header (sample count, keys, shapes).
    """
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{p}: no such shard")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
            shapes = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise FormatError(f"{p}: not a readable safetensors file ({e}); delete it and rerun to regenerate") from None
    raw = meta.get(HEADER_KEY)
    if raw is None:
        raise FormatError(f"{p}: a safetensors file without a '{HEADER_KEY}' header: not a lyra SDG shard")
    try:
        d = json.loads(raw)
    except json.JSONDecodeError as e:
        raise FormatError(f"{p}: damaged '{HEADER_KEY}' header ({e})") from None
    if d.get("format") != FORMAT:
        raise FormatError(f"{p}: format {d.get('format')!r} is not {FORMAT!r}")
    if d.get("format_version") not in READ_VERSIONS:
        raise FormatError(f"{p}: SDG format version {d.get('format_version')} is not supported (this lyra reads "
                          f"versions {', '.join(map(str, READ_VERSIONS))}); regenerate the data with this lyra")
    try:
        header = ShardHeader(int(d["shard_index"]), dict(d["settings"]), list(d["sample_ids"]),
                             list(d["world_seeds"]), [int(v) for v in d["noise_seeds"]], int(d["format_version"]),
                             shapes, bool(d.get("dynamic", False)), list(d.get("directions", ["forward"])))
    except (KeyError, TypeError, ValueError) as e:
        raise FormatError(f"{p}: incomplete header ({e!r})") from None
    if header.directions not in (["forward"], list(DIRECTIONS)):
        raise FormatError(f"{p}: unknown trajectory directions {header.directions}")
    n = header.num_samples
    if not n or len(header.world_seeds) != n or len(header.noise_seeds) != n:
        raise FormatError(f"{p}: header lists {n} sample ids, {len(header.world_seeds)} world seeds and "
                          f"{len(header.noise_seeds)} noise seeds")
    missing = [k for k in REQUIRED_KEYS + (DYNAMIC_KEYS if header.dynamic else ()) if k not in shapes]
    if missing:
        raise FormatError(f"{p}: missing tensors {missing}")
    bad = [k for k, s in shapes.items() if not s or s[0] != n]
    if bad:
        raise FormatError(f"{p}: tensors {bad} do not hold {n} samples along their first axis")
    V, T, H, W = shapes["rgb"][1:5]
    expect = {"rgb": [n, V, T, H, W, 3], "K": [n, V, T, 3, 3], "c2w": [n, V, T, 4, 4], "depth": [n, V, T, H, W],
              "image": [n, H, W, 3], "input_depth": [n, H, W], "gt_depth": [n, V, T, H, W], "times": [n, V, T],
              "input_video": [n, T, H, W, 3], "input_video_depth": [n, T, H, W]}
    wrong = [f"{k} {shapes[k]} (expected {v})" for k, v in expect.items() if k in shapes and shapes[k] != v]
    lat = shapes["latents"]
    if len(lat) != 6 or lat[1] != V or lat[2] < 1:
        wrong.append(f"latents {lat} (expected [{n}, {V}, C, t, h, w])")
    elif "plucker" in shapes and shapes["plucker"] != [n, V, 2 * lat[2], *lat[3:]]:
        wrong.append(f"plucker {shapes['plucker']} (expected {[n, V, 2 * lat[2], *lat[3:]]}: 2C for C = {lat[2]})")
    if len(header.directions) == 2 and V % 2:
        wrong.append(f"{V} trajectories cannot be split into forward and reversed halves")
    if wrong:
        raise FormatError(f"{p}: inconsistent tensor shapes: {'; '.join(wrong)}")
    return header


def read_shard(path: str | os.PathLike) -> tuple[ShardHeader, dict[str, Tensor]]:
    """The checked header and all tensors (stored dtypes, CPU) of shard ``path``."""
    from safetensors.torch import load_file

    header = read_shard_header(path)
    return header, load_file(str(path))


def check_settings(found: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    """Raise :class:`~lyra.errors.ConfigError` naming the differing settings when ``found != expected``."""
    found, expected = _canonical(found), _canonical(expected)
    if found == expected:
        return
    diff = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
    details = "; ".join(f"{k}: {json.dumps(found.get(k))} there, {json.dumps(expected.get(k))} now" for k in diff)
    raise ConfigError(f"{where} was generated with different settings ({details}). Mixing them would make an "
                      "inconsistent data set: write to a new folder, or rerun with the original settings")


# ------------------------------------------------------------------------------------ manifest
def scan_manifest(root: str | os.PathLike, settings: dict[str, Any] | None = None,
                  plan: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the manifest of ``root`` from its shard headers.

    ``settings`` (default: those of the first shard) must match every shard's
    (:class:`~lyra.errors.ConfigError` otherwise). ``plan`` (``start``, ``count``, ``shard_size``) describes
    the last requested range; ``complete`` says whether all its shards are present (``None`` without a plan).
    Returns ``{format, format_version, settings, plan, complete, num_samples, shapes, dynamic, directions,
    shards: [{file, index, num_samples, sample_ids, world_seeds, bytes}], damaged: [unreadable shard files],
    updated}``.
    """
    rootp = Path(root)
    entries = []
    shapes: dict[str, list[int]] = {}
    damaged = []
    layout: tuple[bool, list[str]] | None = None
    for index, path in shard_files(rootp).items():
        try:
            h = read_shard_header(path)
        except FormatError:
            damaged.append(path.name)
            continue
        if h.shard_index != index:
            raise FormatError(f"{path}: its header says shard {h.shard_index}; was it renamed? Delete it and rerun")
        if settings is None:
            settings = h.settings
        check_settings(h.settings, settings, str(path))
        if layout is None:
            layout = (h.dynamic, h.directions)
        elif layout != (h.dynamic, h.directions):
            raise FormatError(f"{path}: dynamic={h.dynamic}, directions {h.directions} differ from the other shards'")
        if not shapes:
            shapes = {k: v[1:] for k, v in h.shapes.items()}
        elif h.shapes["latents"][2] != shapes["latents"][1]:
            raise FormatError(f"{path}: {h.shapes['latents'][2]}-channel latents, the other shards' have "
                              f"{shapes['latents'][1]} (one tokenizer per SDG folder)")
        entries.append({"file": path.name, "index": index, "num_samples": h.num_samples, "sample_ids": h.sample_ids,
                        "world_seeds": h.world_seeds, "bytes": path.stat().st_size})
    complete = None
    if plan is not None:
        have = {e["index"]: e["num_samples"] for e in entries}
        count, size = int(plan["count"]), int(plan["shard_size"])
        complete = all(have.get(k) == min(size, count - k * size) for k in range(-(-count // size)))
    return {
        "format": FORMAT + "-manifest", "format_version": FORMAT_VERSION, "settings": settings, "plan": plan,
        "complete": complete, "num_samples": sum(e["num_samples"] for e in entries), "shapes": shapes,
        "dynamic": layout[0] if layout else False, "directions": layout[1] if layout else ["forward"],
        "shards": entries, "damaged": damaged,
        "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_manifest(root: str | os.PathLike, manifest: dict[str, Any]) -> Path:
    """Write ``manifest`` to ``root/sdg.json`` atomically."""
    path = Path(root) / MANIFEST_NAME
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    return path


def read_manifest(root: str | os.PathLike, scan: bool = False) -> dict[str, Any]:
    """The manifest of SDG folder ``root``: ``sdg.json``, or built by :func:`scan_manifest` from the shard
    headers when ``sdg.json`` is missing, lists other shard files than the folder holds (a run still
    going, or killed), or ``scan``. Raises :class:`~lyra.errors.InputFileError` when ``root`` holds
    neither shards nor a manifest."""
    rootp = Path(root)
    if not rootp.is_dir():
        raise InputFileError(f"{rootp}: no such SDG folder (make one with `lyra sdg {rootp}`)")
    path = rootp / MANIFEST_NAME
    if not scan and path.is_file():
        try:
            m = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise FormatError(f"{path}: unreadable manifest ({e}); delete it, it is rebuilt from the shards") from None
        if m.get("format") != FORMAT + "-manifest" or m.get("format_version") not in READ_VERSIONS:
            raise FormatError(f"{path}: not a lyra SDG manifest of version {', '.join(map(str, READ_VERSIONS))}")
        on_disk = sorted(p.name for p in shard_files(rootp).values())
        if on_disk == sorted(e["file"] for e in m.get("shards", [])):
            return m
        return scan_manifest(rootp, m.get("settings"), m.get("plan"))  # stale (a run still going, or killed)
    m = scan_manifest(rootp)
    if not m["shards"]:
        raise InputFileError(f"{rootp}: holds no SDG shards (shard-NNNNNN.safetensors); make them with `lyra sdg`")
    return m


def compare_sets(root_a: str | os.PathLike, root_b: str | os.PathLike) -> dict[str, Any]:
    """Compare two SDG folders shard by shard (e.g. a one-GPU run and an N-GPU run of the same command).

    Returns ``{"same_settings", "same_shards", "same_sample_ids", "identical_files"}`` (booleans),
    ``"shards"`` (count in ``root_a``) and ``"max_abs_diff"`` ``{key: float}`` over the tensors of the
    shards both hold (0.0 everywhere when the files are byte-identical; ``inf`` where a key's shapes differ).
    """
    from safetensors.torch import load_file

    fa, fb = shard_files(root_a), shard_files(root_b)
    ha = {k: read_shard_header(p) for k, p in fa.items()}
    hb = {k: read_shard_header(p) for k, p in fb.items()}
    common = sorted(set(fa) & set(fb))
    diffs: dict[str, float] = {}
    identical = set(fa) == set(fb)
    for k in common:
        if fa[k].read_bytes() == fb[k].read_bytes():
            continue
        identical = False
        ta, tb = load_file(str(fa[k])), load_file(str(fb[k]))
        for key in set(ta) | set(tb):
            if key not in ta or key not in tb or ta[key].shape != tb[key].shape:
                d = math.inf
            else:
                x, y = ta[key].double(), tb[key].double()
                both_inf = torch.isinf(x) & torch.isinf(y) & (x == y)
                d = float(torch.where(both_inf, torch.zeros_like(x), (x - y).abs()).max()) if x.numel() else 0.0
            diffs[key] = max(diffs.get(key, 0.0), d)
    keys = set(diffs).union(*(ha[k].shapes for k in common), *(hb[k].shapes for k in common))
    settings = {json.dumps(h.settings, sort_keys=True) for h in [*ha.values(), *hb.values()]}
    return {
        "same_settings": len(settings) <= 1, "same_shards": set(fa) == set(fb),
        "same_sample_ids": [ha[k].sample_ids for k in sorted(ha)] == [hb[k].sample_ids for k in sorted(hb)],
        "identical_files": identical, "shards": len(fa),
        "max_abs_diff": {k: diffs.get(k, 0.0) for k in sorted(keys)},
    }


# ------------------------------------------------------------------------------------ reader
def sample_cameras(sample: dict[str, Any]):
    """The :class:`~lyra.geometry.cameras.Cameras` ``[V, T]`` of a :class:`ShardDataset` sample."""
    from lyra.geometry.cameras import Cameras

    H, W = sample["depth"].shape[-2:]
    return Cameras(sample["K"], sample["c2w"], W, H)


class ShardDataset(Dataset):
    """Map-style dataset over an SDG folder: ``dataset[i]`` → one sample as a dict of tensors.

    Args:
        root: the SDG folder (its ``sdg.json``, or the shard headers when there is none).
        rank, world_size: optional slicing for data-parallel training: rank ``r`` of ``W`` sees the
            shards at positions ``r, r + W, …`` of the sorted shard list (whole shards, so each rank
            reads its own files). Both or neither.
        as_float: convert to the API conventions (below); ``False`` returns the stored dtypes/layouts.
        cache_shards: open shard files kept (least recently used are closed). Samples are read
            through memory maps: a sample costs reading its own bytes only.

    A sample (``as_float=True``): ``latents`` raw ``[V, C, t, h, w]`` float32 (``C`` = :attr:`latent_channels`);
    ``rgb`` ``[V, T, 3, H, W]`` float32 in [0, 1]; ``K`` ``[V, T, 3, 3]``; ``c2w`` ``[V, T, 4, 4]``;
    ``depth`` ``[V, T, H, W]`` float32;
    ``image`` ``[3, H, W]`` float32 in [0, 1]; ``input_depth`` ``[H, W]``; ``gt_depth`` when stored;
    ``sample_id`` (str), ``world_seed`` (int, −1 for user images), ``noise_seed`` (int). Dynamic data
    (:attr:`dynamic`) adds ``times`` ``[V, T]``, ``input_video`` ``[T, 3, H, W]`` float32 in [0, 1] and
    ``input_video_depth`` ``[T, H, W]``; :attr:`directions` lays out the trajectories (module doc).
    :func:`sample_cameras` turns ``K``/``c2w`` into :class:`~lyra.geometry.cameras.Cameras`.
    """

    def __init__(self, root: str | os.PathLike, rank: int | None = None, world_size: int | None = None,
                 as_float: bool = True, cache_shards: int = 4) -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        shards = sorted(self.manifest["shards"], key=lambda e: e["index"])
        if (rank is None) != (world_size is None):
            raise ConfigError("give both rank and world_size, or neither")
        if world_size is not None:
            if world_size < 1 or not 0 <= rank < world_size:
                raise ConfigError(f"rank must be in [0, world_size), got rank {rank} of {world_size}")
            shards = shards[rank::world_size]
        self.shards = shards
        self.as_float = as_float
        self.cache_shards = max(1, cache_shards)
        self._ends = list(np.cumsum([e["num_samples"] for e in shards]).tolist())
        self._open: collections.OrderedDict[int, Any] = collections.OrderedDict()
        #: Whether the scenes are dynamic (frames at different times; ``times`` in every sample).
        self.dynamic = bool(self.manifest.get("dynamic", False))
        #: ``["forward"]`` or ``["forward", "reversed"]`` (motion reversal): the layout of the trajectories.
        self.directions = list(self.manifest.get("directions", ["forward"]))
        lat = self.manifest.get("shapes", {}).get("latents")
        #: ``C``: latent channels of every sample's ``latents`` (``plucker`` has ``2C``); ``None`` if not known.
        self.latent_channels: int | None = int(lat[1]) if lat and len(lat) == 5 else None

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @property
    def sample_ids(self) -> list[str]:
        return [sid for e in self.shards for sid in e["sample_ids"]]

    def locate(self, index: int) -> tuple[int, int]:
        """``(position in self.shards, sample within the shard)`` of dataset item ``index``."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} samples")
        index %= n
        pos = bisect.bisect_right(self._ends, index)
        return pos, index - (self._ends[pos - 1] if pos else 0)

    def _handle(self, pos: int) -> Any:
        from safetensors import safe_open

        if pos in self._open:
            self._open.move_to_end(pos)
            return self._open[pos]
        entry = self.shards[pos]
        path = self.root / entry["file"]
        header = read_shard_header(path)
        if header.sample_ids != entry["sample_ids"]:
            raise FormatError(f"{path}: its samples differ from {self.root / MANIFEST_NAME}; rebuild the manifest "
                              f"with `lyra sdg {self.root} ...` (same settings) or delete sdg.json")
        if self.latent_channels is not None and header.latent_channels != self.latent_channels:
            raise FormatError(f"{path}: {header.latent_channels}-channel latents, {self.root / MANIFEST_NAME} says "
                              f"{self.latent_channels} (one tokenizer per SDG folder)")
        handle = safe_open(str(path), framework="pt")
        self._open[pos] = (handle, header)
        while len(self._open) > self.cache_shards:
            self._open.popitem(last=False)
        return self._open[pos]

    def __getitem__(self, index: int) -> dict[str, Any]:
        pos, j = self.locate(index)
        handle, header = self._handle(pos)
        out: dict[str, Any] = {k: handle.get_slice(k)[j] for k in handle.keys()}
        if self.as_float:
            out["latents"] = out["latents"].float()
            out["rgb"] = out["rgb"].permute(0, 1, 4, 2, 3).float() / 255.0
            out["image"] = out["image"].permute(2, 0, 1).float() / 255.0
            out["depth"] = out["depth"].float()
            if "gt_depth" in out:
                out["gt_depth"] = out["gt_depth"].float()
            if "input_video" in out:
                out["input_video"] = out["input_video"].permute(0, 3, 1, 2).float() / 255.0
        seed = header.world_seeds[j]
        out["sample_id"] = header.sample_ids[j]
        out["world_seed"] = -1 if seed is None else int(seed)
        out["noise_seed"] = header.noise_seeds[j]
        return out

    def __getstate__(self) -> dict[str, Any]:  # open handles do not pickle (DataLoader workers)
        state = self.__dict__.copy()
        state["_open"] = collections.OrderedDict()
        return state


def ensure_output_dir(root: str | os.PathLike) -> Path:
    """Create the SDG folder ``root`` if missing (its parent must exist); check it is writable."""
    p = Path(root)
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{p}: exists and is not a folder")
    if not p.exists():
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            raise OutputPathError(f"{p}: folder {parent} does not exist (create it first)")
        p.mkdir(exist_ok=True)
    if not os.access(p, os.W_OK):
        raise OutputPathError(f"{p}: not writable")
    return p
