"""What the product delivers: a :class:`Scene` (one image → one Gaussian set) and a :class:`DynamicScene` (one video
→ one Gaussian set per output time). A static scene is the one-time case of a dynamic one: both answer ``times``
(``[1]`` = ``[0.]`` for a :class:`Scene`), ``gaussian_sets`` (one set per time), ``camera_times`` (the time each
trajectory frame shows) and ``at(t)``, so a viewer or a fly-through takes either (:mod:`lyra.viewer`,
:func:`lyra.render.flythrough.flythrough`).

Both live in one OpenCV world (the input camera at the origin, x right, y down, z forward) and keep the trajectory
cameras the teacher generated (``Cameras [V, T]``, c2w 4×4).

A :class:`DynamicScene` holds ``K`` output times ``t_k`` in ``[0, 1]`` (0 = the first frame of the input video,
1 = its last) and the Gaussians of each time. ``camera_times [T]``: frame ``f`` of every trajectory is the scene
at time ``camera_times[f]`` (the camera moves while time advances, as in Lyra's dynamic mode).

A :class:`Scene` is written as one splat file (:meth:`Scene.save`). On disk a dynamic scene is a folder (written
by :meth:`DynamicScene.save`, read by :meth:`DynamicScene.load`)::

    scene4d/
        index.json      {"format": "lyra-dynamic-scene", "version": 1, "times": [...], "files": [...], ...}
        t000.ply        the Gaussians at times[0]   (.ply default; .splat / .spz by option)
        t001.ply        ...
        cameras.json    the trajectory cameras (lyra camera-path JSON, the V trajectories one after the other,
                        with "trajectories": [{"name", "frames"}] and "camera_times"), when there are cameras

``index.json`` fields: ``format``, ``version``, ``times`` ``[K]``, ``files`` ``[K]`` (names in the folder),
``gaussians`` (count per file), ``cameras`` (file name or ``null``), ``trajectories``, ``camera_times``,
``metadata`` (provenance: preset, seed, input, weights hashes, timings, ...), ``lyra`` (the writing version).

The folder is written whole or not at all: everything goes into a temporary folder beside it, which then
replaces the destination (:func:`lyra.fileio.replace_dir`); a failure leaves the old folder (or nothing).
An existing non-empty folder is only replaced when it is itself a dynamic scene (it has a lyra ``index.json``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import torch
from torch import Tensor

from lyra.errors import ConfigError, FormatError, InputFileError, LyraError, OutputPathError
from lyra.gaussians import Gaussians
from lyra.geometry.cameras import Cameras

__all__ = ["CAMERAS_NAME", "DYNAMIC_FORMAT", "DYNAMIC_VERSION", "INDEX_NAME", "DynamicScene", "LazyGaussians",
           "Scene", "check_scene_output", "is_dynamic_scene_dir", "nearest_time_index"]

DYNAMIC_FORMAT = "lyra-dynamic-scene"
DYNAMIC_VERSION = 1
INDEX_NAME = "index.json"
CAMERAS_NAME = "cameras.json"


@overload
def nearest_time_index(times: Tensor, t: float) -> int: ...
@overload
def nearest_time_index(times: Tensor, t: Tensor) -> Tensor: ...
def nearest_time_index(times: Tensor, t: float | Tensor) -> int | Tensor:
    """Index of the entry of ``times`` ``[K]`` (increasing) nearest to ``t`` (a float, or a tensor of any shape).

    No interpolation: a renderer shows the Gaussians of the nearest stored time. Ties (``t`` exactly halfway) go to
    the earlier time. Returns an ``int`` for a float ``t``, else an int64 tensor of ``t``'s shape.
    """
    ts = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
    if ts.numel() == 0:
        raise ConfigError("no times to choose from")
    q = torch.as_tensor(t, dtype=torch.float64)
    right = torch.searchsorted(ts, q.reshape(-1).contiguous(), side="left").clamp(0, len(ts) - 1)
    left = (right - 1).clamp_min(0)
    flat = q.reshape(-1)
    pick = torch.where((flat - ts[left]).abs() <= (ts[right] - flat).abs(), left, right)
    return int(pick[0]) if q.dim() == 0 else pick.reshape(q.shape)


def is_dynamic_scene_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder with a lyra dynamic-scene ``index.json`` (content checked, not only the name)."""
    index = Path(path) / INDEX_NAME
    if not index.is_file():
        return False
    try:
        data = json.loads(index.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("format") == DYNAMIC_FORMAT


class LazyGaussians(Sequence[Gaussians]):
    """The Gaussians files of a scene folder, read on access (the last ``cache`` sets kept in memory).

    What :meth:`DynamicScene.load` gives with ``lazy=True``: a viewer or a fly-through touches one time at a time,
    so a long 4D scene never has to fit in memory whole.
    """

    def __init__(self, paths: Sequence[Path], cache: int = 2) -> None:
        self.paths = list(paths)
        self.cache = max(1, int(cache))
        self._cached: dict[int, Gaussians] = {}

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, index: int) -> Gaussians: ...
    @overload
    def __getitem__(self, index: slice) -> list[Gaussians]: ...
    def __getitem__(self, index: int | slice) -> Gaussians | list[Gaussians]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = range(len(self))[index]
        if i not in self._cached:
            from lyra.gaussians.io import load_gaussians

            if len(self._cached) >= self.cache:
                self._cached.pop(next(iter(self._cached)))
            self._cached[i] = load_gaussians(self.paths[i])
        return self._cached[i]

    def __iter__(self) -> Iterator[Gaussians]:
        return (self[i] for i in range(len(self)))


def _check_times(times: Tensor, what: str = "times") -> Tensor:
    t = torch.as_tensor(times, dtype=torch.float32).reshape(-1)
    if t.numel() == 0:
        raise ConfigError(f"{what}: at least one time is needed")
    if not torch.isfinite(t).all() or (t < 0).any() or (t > 1).any():
        raise ConfigError(f"{what} must be finite and lie in [0, 1], got {t.tolist()[:8]}")
    if t.numel() > 1 and not (t[1:] > t[:-1]).all():
        raise ConfigError(f"{what} must be strictly increasing, got {t.tolist()[:8]}")
    return t


# ------------------------------------------------------------------------------------------------ Scene
@dataclass
class Scene:
    """One image's 3D Gaussians: what :func:`lyra.pipeline.generate` returns (DESIGN.md "Contracts": pipeline →
    user); the one-time case of a :class:`DynamicScene`.

    Attributes:
        gaussians: the pruned Gaussians (CPU, float32; OpenCV world of the input camera at the origin).
        cameras: ``Cameras [V, T]`` of the trajectories the teacher generated (frame 0 = the input view).
        names: the trajectory names (``V``).
        metadata: ``preset``, ``seed``, ``steps``, ``size`` ``[H, W]``, ``input_size`` ``[H, W]``, ``fit``
            (the crop/resize note or ``None``), ``trajectories``, ``center_depth``, ``prune_ratio``,
            ``gaussians_before_prune``, ``gaussians``, ``device``, ``weights`` (SHA-256 per component),
            ``timings_s`` (seconds per stage, and ``total``), ``low_memory``, ``peak_gib`` (peak GPU memory per
            stage and ``run``, GiB; measured in low-memory mode on CUDA, else ``None``), ``transfer_s`` (seconds
            moving models to the GPU).
        videos: the teacher's decoded videos ``[V, T, 3, H, W]`` in [0, 1] (only with ``decode_videos``).
        image: the fitted input image ``[3, H, W]`` in [0, 1].
        depth: the input view's z-depth ``[H, W]`` the teacher warped with (given or estimated; ``inf``: sky).
        input_camera: the input view's camera at the working size (batch shape ``[]``).
        latent_start: index of the first latent-head Gaussian in ``gaussians`` (the input-view Gaussians, one per
            pixel of the photo, come first; 0 when there are none).
    """

    gaussians: Gaussians
    cameras: Cameras
    names: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    videos: Tensor | None = None
    image: Tensor | None = None
    depth: Tensor | None = None
    input_camera: Cameras | None = None
    latent_start: int = 0

    #: A static scene: one time.
    dynamic = False

    @property
    def times(self) -> Tensor:
        """``[1]``: the one time a static scene has (``0.``)."""
        return torch.zeros(1)

    @property
    def gaussian_sets(self) -> tuple[Gaussians]:
        """The Gaussian set of each time: ``(gaussians,)``."""
        return (self.gaussians,)

    @property
    def camera_times(self) -> Tensor:
        """``[T]`` zeros: every trajectory frame shows the one time."""
        return torch.zeros(int(self.cameras.shape[-1]))

    def index_at(self, t: float) -> int:
        """``0`` (the one time) for any ``t``."""
        return 0

    def at(self, t: float) -> Gaussians:
        """The Gaussians (the same at every time)."""
        return self.gaussians

    def save(self, path: str | os.PathLike, **options: Any) -> Path:
        """Write the Gaussians to ``path`` atomically, the format chosen by its extension (``.ply``, ``.splat``,
        ``.spz``; format options as :func:`lyra.gaussians.io.save_gaussians`). Unknown extensions raise
        :class:`~lyra.errors.OutputPathError` before anything is written."""
        from lyra.gaussians.io import save_gaussians

        return save_gaussians(self.gaussians, path, **options)

    def camera_path(self) -> dict[str, Any]:
        """The trajectory cameras as lyra's camera-path JSON (``lyra render --trajectory`` / ``lyra view
        --cameras``): the ``V`` trajectories one after the other (``V·T`` frames)."""
        from lyra.geometry.trajectories import camera_path_dict

        return camera_path_dict(self.cameras)

    def save_cameras(self, path: str | os.PathLike) -> Path:
        """Write :meth:`camera_path` (plus the trajectory names and frame counts) to a JSON file, atomically."""
        from lyra.fileio import atomic_path

        data = self.camera_path()
        data["trajectories"] = [{"name": n, "frames": int(self.cameras.shape[1])} for n in self.names]
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(data) + "\n")
        return Path(path)

    def __len__(self) -> int:
        """The number of Gaussians (a :class:`DynamicScene`'s length is its number of times)."""
        return len(self.gaussians)


# ------------------------------------------------------------------------------------------------ DynamicScene
@dataclass
class DynamicScene:
    """4D Gaussians (see the module doc).

    Attributes:
        times: ``[K]`` float32 output times in [0, 1], strictly increasing.
        gaussians: ``K`` Gaussian sets (a list, or a :class:`LazyGaussians` after ``load(lazy=True)``);
            ``gaussians[k]`` is the scene at ``times[k]``.
        cameras: the trajectory cameras ``Cameras [V, T]`` (OpenCV c2w, frame 0 = the input view), or ``None``.
        names: the ``V`` trajectory names.
        camera_times: ``[T]`` time shown by each trajectory frame (default ``linspace(0, 1, T)``).
        metadata: provenance (preset, seed, input video info, weights hashes, timings, ...); JSON-serialisable.
    """

    times: Tensor
    gaussians: Sequence[Gaussians]
    cameras: Cameras | None = None
    names: tuple[str, ...] = ()
    camera_times: Tensor | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.times = _check_times(self.times)
        if len(self.gaussians) != len(self.times):
            raise ConfigError(f"{len(self.times)} times but {len(self.gaussians)} Gaussian sets; give one set per time")
        if self.cameras is not None:
            if len(self.cameras.shape) == 1:
                self.cameras = self.cameras.reshape(1, -1)
            if len(self.cameras.shape) != 2:
                raise ConfigError(f"cameras must be Cameras [V, T], got batch shape {tuple(self.cameras.shape)}")
            v, t = self.cameras.shape
            self.names = tuple(self.names) if self.names else tuple(f"traj{i}" for i in range(v))
            if len(self.names) != v:
                raise ConfigError(f"{len(self.names)} names for {v} trajectories")
            if self.camera_times is None:
                self.camera_times = torch.linspace(0.0, 1.0, t) if t > 1 else torch.zeros(1)
            self.camera_times = torch.as_tensor(self.camera_times, dtype=torch.float32).reshape(-1)
            if len(self.camera_times) != t or not torch.isfinite(self.camera_times).all() or (
                    self.camera_times < 0).any() or (self.camera_times > 1).any():
                raise ConfigError(f"camera_times must be {t} values in [0, 1] (one per trajectory frame)")
        else:
            self.names, self.camera_times = (), None

    #: A dynamic scene: ``K`` times.
    dynamic = True

    @property
    def gaussian_sets(self) -> Sequence[Gaussians]:
        """The Gaussian set of each time (``gaussians``)."""
        return self.gaussians

    def __len__(self) -> int:
        """The number of output times ``K``."""
        return len(self.times)

    def index_at(self, t: float) -> int:
        """Index of the stored time nearest to ``t`` (:func:`nearest_time_index`)."""
        return nearest_time_index(self.times, float(t))

    def at(self, t: float) -> Gaussians:
        """The Gaussians of the stored time nearest to ``t`` (no interpolation between times)."""
        return self.gaussians[self.index_at(t)]

    def camera_path(self) -> dict[str, Any]:
        """The trajectory cameras as lyra's camera-path JSON (the ``V`` trajectories one after the other, ``V·T``
        frames) plus ``trajectories`` (name, frames) and ``camera_times``."""
        from lyra.geometry.trajectories import camera_path_dict

        if self.cameras is None:
            raise ConfigError("this dynamic scene has no cameras")
        data = camera_path_dict(self.cameras)
        data["trajectories"] = [{"name": n, "frames": int(self.cameras.shape[1])} for n in self.names]
        assert self.camera_times is not None
        data["camera_times"] = [round(float(v), 7) for v in self.camera_times]
        return data

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike, format: str = ".ply", **options: Any) -> Path:
        """Write the scene as a folder (layout in the module doc), atomically: a whole folder replaced at once.

        Args:
            path: the folder. It may not exist yet (its parent must), be empty, or hold a dynamic scene (replaced).
            format: ``.ply`` (INRIA 3DGS, default), ``.splat`` or ``.spz`` (with or without the dot).
            options: format options of :func:`lyra.gaussians.io.save_gaussians` (e.g. ``spz_version=4``).

        Raises:
            OutputPathError: the path is a file, a non-empty folder that is not a dynamic scene, or its parent is
                missing or not writable; unknown format. FormatError: invalid Gaussians (nothing is written).
        """
        from lyra import __version__
        from lyra.fileio import make_temp_dir, replace_dir
        from lyra.gaussians.io import format_for, save_gaussians

        final = Path(path)
        ext = format if format.startswith(".") else f".{format}"
        fmt = format_for(f"t{ext.lower()}", OutputPathError)
        check_scene_output(final)
        width = max(3, len(str(len(self) - 1)))
        files = [f"t{k:0{width}d}{fmt.extension}" for k in range(len(self))]
        tmp = make_temp_dir(final)
        try:
            counts = []
            for name, g in zip(files, self.gaussians, strict=True):
                save_gaussians(g, tmp / name, **options)
                counts.append(len(g))
            cams_name = None
            if self.cameras is not None:
                cams_name = CAMERAS_NAME
                (tmp / cams_name).write_text(json.dumps(self.camera_path()) + "\n")
            index = {
                "format": DYNAMIC_FORMAT, "version": DYNAMIC_VERSION,
                "times": [round(float(v), 7) for v in self.times], "files": files, "gaussians": counts,
                "cameras": cams_name, "trajectories": [{"name": n, "frames": int(self.cameras.shape[1])}
                                                       for n in self.names] if self.cameras is not None else [],
                "camera_times": None if self.camera_times is None else [round(float(v), 7) for v in self.camera_times],
                "metadata": _jsonable(self.metadata), "lyra": __version__,
            }
            # one line per field, values compact (a 121-time index stays readable)
            (tmp / INDEX_NAME).write_text("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}"
                                                             for k, v in index.items()) + "\n}\n")
            os.chmod(tmp, 0o777 & ~_umask())
            replace_dir(tmp, final)
        except LyraError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise OutputPathError(f"{final}: cannot write the scene folder ({e.strerror or e})") from e
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    @classmethod
    def load(cls, path: str | os.PathLike, lazy: bool = False) -> DynamicScene:
        """Read a scene folder written by :meth:`save`.

        Args:
            lazy: read each Gaussians file only when it is used (:class:`LazyGaussians`); the files' presence is
                still checked now.

        Raises:
            InputFileError: not a folder, no ``index.json``, a listed file missing. FormatError: an ``index.json``
                that is not a lyra dynamic scene, from a newer lyra, or inconsistent.
        """
        from lyra.fileio import confined_file, recover_replaced_dir
        from lyra.geometry.trajectories import load_camera_path

        root = Path(path)
        if recover_replaced_dir(root):
            print(f"note: restored {root} from {root.parent / ('.' + root.name + '.old')} (an interrupted "
                  "replacement)", file=sys.stderr)
        if not root.is_dir():
            raise InputFileError(f"{root}: not a folder (a dynamic scene is a folder with {INDEX_NAME})")
        index_path = root / INDEX_NAME
        if not index_path.is_file():
            raise InputFileError(f"{root}: no {INDEX_NAME}; not a lyra dynamic scene folder")
        try:
            data = json.loads(index_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FormatError(f"{index_path}: not valid JSON ({e})") from None
        if not isinstance(data, dict) or data.get("format") != DYNAMIC_FORMAT:
            raise FormatError(f"{index_path}: not a lyra dynamic scene index (format must be {DYNAMIC_FORMAT!r})")
        version = data.get("version")
        if not isinstance(version, int) or version > DYNAMIC_VERSION or version < 1:
            raise FormatError(f"{index_path}: format version {version!r}; this lyra reads version {DYNAMIC_VERSION} "
                              "(update lyra)")
        try:
            times = torch.tensor([float(v) for v in data["times"]], dtype=torch.float32)
            files = [str(f) for f in data["files"]]
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"{index_path}: missing or invalid field {e}") from None
        if len(files) != len(times):
            raise FormatError(f"{index_path}: {len(times)} times but {len(files)} files")
        try:
            times = _check_times(times)
        except ConfigError as e:
            raise FormatError(f"{index_path}: {e}") from None
        paths = [confined_file(root, f, f"a file in {INDEX_NAME}") for f in files]
        gaussians: Sequence[Gaussians]
        if lazy:
            gaussians = LazyGaussians(paths)
        else:
            from lyra.gaussians.io import load_gaussians

            gaussians = [load_gaussians(p) for p in paths]
        cameras, names, camera_times = None, (), None
        if data.get("cameras"):
            cams_path = confined_file(root, data["cameras"], f"the cameras in {INDEX_NAME}")
            cams = load_camera_path(cams_path)
            trajs = data.get("trajectories") or [{"name": "camera path", "frames": len(cams)}]
            try:
                names = tuple(str(t["name"]) for t in trajs)
                frames = {int(t["frames"]) for t in trajs}
            except (KeyError, TypeError, ValueError) as e:
                raise FormatError(f"{index_path}: invalid trajectories ({e})") from None
            if len(frames) != 1 or len(names) * next(iter(frames)) != len(cams):
                raise FormatError(f"{index_path}: trajectories {trajs} do not match the {len(cams)} cameras of "
                                  f"{cams_path.name}")
            cameras = cams.reshape(len(names), next(iter(frames)))
            if data.get("camera_times") is not None:
                try:
                    camera_times = torch.tensor([float(v) for v in data["camera_times"]], dtype=torch.float32)
                except (TypeError, ValueError) as e:
                    raise FormatError(f"{index_path}: invalid camera_times ({e})") from None
        metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        try:
            return cls(times=times, gaussians=gaussians, cameras=cameras, names=names, camera_times=camera_times,
                       metadata=metadata)
        except ConfigError as e:
            raise FormatError(f"{index_path}: {e}") from None


def check_scene_output(path: str | os.PathLike) -> Path:
    """Check that a dynamic scene can be written to the folder ``path`` (before any work is done).

    Accepted: a path that does not exist yet (its parent must be a writable folder), an empty folder, or a folder
    holding a dynamic scene (it will be replaced). Anything else raises :class:`~lyra.errors.OutputPathError`.
    """
    from lyra.fileio import recover_replaced_dir

    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    recover_replaced_dir(p)
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{p}: is a file; a dynamic scene is written as a folder (give a folder path such as "
                              "scene4d/)")
    if p.is_dir() and any(p.iterdir()) and not is_dynamic_scene_dir(p):
        raise OutputPathError(f"{p}: a non-empty folder that is not a lyra dynamic scene; give a new or empty folder "
                              "(lyra only replaces a folder it wrote)")
    if not parent.is_dir():
        raise OutputPathError(f"{p}: folder {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK):
        raise OutputPathError(f"{p}: folder {parent} is not writable")
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _jsonable(value: Any) -> Any:
    """``value`` with tensors, paths and non-finite floats turned into JSON values (``NaN`` → ``null``)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Tensor):
        return _jsonable(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)
