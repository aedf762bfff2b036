"""A ``viser`` web viewer: Gaussian splats, trajectory cameras as frustums, and playback.

:func:`serve` shows a splat set, a :class:`~lyra.scene.Scene` (with its trajectory cameras) or a 4D scene
(:class:`~lyra.scene.DynamicScene`): the same viewer, for a 4D scene with a time slider, a "Play time" switch and
"Time follows camera" (frame ``f`` of a trajectory shows the scene at ``camera_times[f]``). Changing the time swaps
the splats in place (:meth:`Viewer.show_time`: one buffer update per browser, the Gaussians of the stored time
nearest to the slider; no interpolation between stored times).

World convention: lyra's scenes live in OpenCV world coordinates (x right, **y down**, z forward
for the input camera), so the viewer's up direction defaults to ``-y``. Cameras are
:class:`~lyra.geometry.Cameras` with OpenCV camera-to-world matrices, which is also viser's
frustum convention (+z forward, +x right, +y down); only the rotation → wxyz quaternion
conversion is needed.

``viser`` is an optional dependency (``pip install viser``); it is imported when
:func:`serve` runs, and a missing install raises :class:`~lyra.errors.ConfigError`.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lyra.errors import ConfigError
from lyra.gaussians import Gaussians, rotmat_to_quat
from lyra.geometry.cameras import Cameras

if TYPE_CHECKING:
    from lyra.scene import DynamicScene, Scene

#: Colour of the trajectory frustums and of the frustum of the frame being played.
FRUSTUM_COLOR = (40, 90, 200)
CURRENT_COLOR = (230, 60, 30)


def limit_splats(gaussians: Gaussians, max_splats: int | None) -> tuple[Gaussians, str | None]:
    """Keep the ``max_splats`` Gaussians of highest opacity (original order kept).

    Returns the Gaussians and a note for the user when some were dropped (``None`` otherwise).
    ``max_splats=None`` keeps everything.
    """
    n = len(gaussians)
    if max_splats is None or n <= max_splats:
        return gaussians, None
    if max_splats < 1:
        raise ConfigError(f"max_splats must be at least 1, got {max_splats}")
    idx = torch.topk(gaussians.opacities, max_splats, sorted=False).indices.sort().values
    note = (f"showing the {max_splats:,} most opaque of {n:,} Gaussians "
            f"(raise --max-splats to show more; the browser may slow down)")
    return gaussians[idx], note


def camera_poses(cameras: Cameras) -> tuple[np.ndarray, np.ndarray]:
    """Viser poses of a flat batch of cameras ``[T]``.

    Returns ``(wxyz [T, 4], position [T, 3])`` float64: the rotation of each OpenCV
    camera-to-world matrix as a unit quaternion (w ≥ 0) and the camera centre. Viser's frustums
    and camera handles use the same OpenCV camera axes, so no axis flip is applied.
    """
    c2w = cameras.flatten().c2w.double()
    wxyz = rotmat_to_quat(c2w[:, :3, :3])
    return wxyz.cpu().numpy(), c2w[:, :3, 3].cpu().numpy()


def camera_fov_aspect(cameras: Cameras) -> tuple[np.ndarray, np.ndarray]:
    """Vertical field of view (radians) and frustum aspect (width / height of the image plane at
    unit depth, i.e. ``(W / fx) / (H / fy)``) of a flat batch of cameras ``[T]``."""
    K = cameras.flatten().K.double()
    fx, fy = K[:, 0, 0], K[:, 1, 1]
    fov = 2.0 * torch.atan(cameras.height / (2.0 * fy))
    aspect = (cameras.width / fx) / (cameras.height / fy)
    return fov.cpu().numpy(), aspect.cpu().numpy()


def _trajectories(cameras: Cameras | Mapping[str, Cameras] | None) -> dict[str, Cameras]:
    """Named flat camera paths: a mapping as given; ``Cameras [T]`` → one path; ``[V, T]`` → V paths."""
    if cameras is None:
        return {}
    if isinstance(cameras, Mapping):
        return {str(k): v.flatten() for k, v in cameras.items() if len(v.flatten())}
    if len(cameras.shape) >= 2:
        flat = cameras.reshape(cameras.shape[0], -1)
        return {f"trajectory {i}": flat[i] for i in range(flat.shape[0])}
    return {"camera path": cameras.flatten()} if len(cameras.shape) else {"camera path": cameras.reshape(1)}


def _scene_extent(means: torch.Tensor) -> tuple[np.ndarray, float]:
    """Median centre ``[3]`` and 80th-percentile distance from it (a robust scene size)."""
    idx = torch.randperm(len(means), generator=torch.Generator().manual_seed(0))[:100_000]
    m = means[idx].double()
    center = m.median(dim=0).values
    extent = torch.quantile((m - center).norm(dim=-1), 0.8).item() if len(m) > 1 else 1.0
    return center.numpy(), max(extent, 1e-3)


@dataclass
class Viewer:
    """A running viewer. ``server`` is the ``viser.ViserServer``; ``url`` the address to open."""

    server: Any
    url: str
    num_splats: int
    trajectories: dict[str, Cameras]
    up: np.ndarray
    #: The playback controls (viser GUI handles) by label: Trajectory, Frame, Play, Look through camera; for a
    #: 4D scene also Time, Play time, Time follows camera, Shown time.
    gui: dict[str, Any] = field(default_factory=dict)
    #: The splat node (viser ``GaussianSplatHandle``); :meth:`show_time` updates it in place.
    splats: Any = None
    #: The 4D scene shown (``None`` for a static one) and the index of the time on screen.
    scene4d: DynamicScene | None = None
    time_index: int = 0
    max_splats: int | None = None
    _frustums: dict[str, list] = field(default_factory=dict)
    _current: tuple[str, int] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _time_lock: threading.Lock = field(default_factory=threading.Lock)

    def camera_view(self, name: str, index: int) -> dict[str, np.ndarray | float]:
        """The client-camera settings that look through frame ``index`` of path ``name``:
        ``position``, ``look_at`` (1 unit ahead along the optical axis), ``up`` (the camera's -y
        axis in the world) and vertical ``fov`` (radians)."""
        cams = self.trajectories[name][index:index + 1]
        c2w = cams.c2w[0].double().numpy()
        fov, _ = camera_fov_aspect(cams)
        return {"position": c2w[:3, 3], "look_at": c2w[:3, 3] + c2w[:3, 2], "up": -c2w[:3, 1],
                "fov": float(fov[0])}

    def show_frame(self, name: str, index: int) -> None:
        """Move every connected browser's camera to frame ``index`` of path ``name`` and highlight
        that frame's frustum."""
        view = self.camera_view(name, index)
        if self._current is not None:
            old_name, old_i = self._current
            self._frustums[old_name][old_i].color = FRUSTUM_COLOR
        self._frustums[name][index].color = CURRENT_COLOR
        self._current = (name, index)
        for client in self.server.get_clients().values():
            with client.atomic():
                client.camera.position = view["position"]
                client.camera.look_at = view["look_at"]
                client.camera.up_direction = view["up"]
                client.camera.fov = view["fov"]

    def show_time(self, index: int) -> bool:
        """Show the Gaussians of stored time ``index`` of the 4D scene (every browser at once; the splat node is
        updated in place, its size may change). Returns whether the splats changed (``False``: already shown)."""
        if self.scene4d is None:
            raise ConfigError("show_time needs a 4D scene (serve a DynamicScene)")
        k = len(self.scene4d)
        if not 0 <= int(index) < k:
            raise ConfigError(f"time index {index} outside 0..{k - 1}")
        with self._time_lock:
            if int(index) == self.time_index:
                return False
            g, _ = limit_splats(self.scene4d.gaussians[int(index)].to("cpu"), self.max_splats)
            self.splats.set_gaussians(**splat_arrays(g))
            self.time_index = int(index)
            self.num_splats = len(g)
        return True

    def stop(self) -> None:
        """Stop playback and shut the server down."""
        self._stop.set()
        with contextlib.redirect_stdout(io.StringIO()):  # viser prints "Server stopped"
            self.server.stop()


def splat_arrays(g: Gaussians) -> dict[str, np.ndarray]:
    """What viser draws of Gaussians on the CPU: ``centers`` [N, 3], ``covariances`` [N, 3, 3], ``rgbs`` [N, 3]
    in [0, 1] (base colour only) and ``opacities`` [N, 1], float32."""
    return {
        "centers": g.means.detach().float().numpy(),
        "covariances": g.covariances().detach().float().numpy(),
        "rgbs": g.colors.clamp(0, 1).detach().float().numpy(),
        "opacities": g.opacities.reshape(-1, 1).detach().float().numpy(),
    }


def _import_viser():
    try:
        import viser
    except ImportError:
        raise ConfigError("the viewer needs the 'viser' package: pip install viser") from None
    return viser


def serve(
    scene: Gaussians | Scene | DynamicScene,
    cameras: Cameras | Mapping[str, Cameras] | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    max_splats: int | None = 2_000_000,
    up: tuple[float, float, float] = (0.0, -1.0, 0.0),
    frustum_scale: float | None = None,
    fps: float = 12.0,
    verbose: bool = True,
) -> Viewer:
    """Start a viser server showing ``scene`` and return at once (the server runs in threads).

    Args:
        scene: Gaussians, a :class:`~lyra.scene.Scene` or a :class:`~lyra.scene.DynamicScene` (any device; copied to
            the CPU). Colours are the base colour (higher SH bands are not shown). A scene brings its trajectory
            cameras (used when ``cameras`` is ``None``). A 4D scene starts at its first stored time and adds the
            time controls: a ``Time`` slider in [0, 1] (the stored time nearest to it is shown), ``Play time``
            (steps through the stored times at ``fps``), ``Time follows camera`` (on: moving along a trajectory
            frame ``f`` also shows time ``scene.camera_times[f]``, as the generated videos do; only with the
            scene's own cameras) and a ``Shown time`` readout; ``max_splats`` applies to each time's set.
        cameras: trajectory cameras (OpenCV c2w): ``Cameras [T]`` (one path), ``[V, T]`` (V paths)
            or a mapping name → ``Cameras``. Each camera is drawn as a frustum; the GUI has a
            path dropdown, a frame slider and a play button that moves the browser's camera.
        host, port: where to listen (default loopback only; ``0.0.0.0`` exposes it on the network).
        max_splats: keep only this many most-opaque Gaussians (a note is printed); ``None`` = all.
        up: world direction shown up (default ``-y``, OpenCV worlds as lyra writes them).
        frustum_scale: frustum size in world units (default 5 % of the scene's extent).
        fps: playback rate in frames per second.
        verbose: print notes (splat budget) to stdout.
    """
    if isinstance(scene, Gaussians):
        return _serve_splats(scene, cameras, host, port, max_splats, up, frustum_scale, fps, verbose)
    if scene.dynamic and len(scene) == 0:
        raise ConfigError("the 4D scene has no times")
    own_paths = cameras is None and scene.cameras is not None
    if own_paths:
        assert scene.cameras is not None
        cameras = {name: scene.cameras[v] for v, name in enumerate(scene.names)}
    viewer = _serve_splats(scene.gaussian_sets[0], cameras, host, port, max_splats, up, frustum_scale, fps, verbose)
    if scene.dynamic:
        viewer.scene4d = scene
        viewer.time_index = 0
        _add_time_gui(viewer, fps, follow=own_paths)
    return viewer


def _serve_splats(gaussians: Gaussians, cameras: Cameras | Mapping[str, Cameras] | None, host: str, port: int,
                  max_splats: int | None, up: tuple[float, float, float], frustum_scale: float | None, fps: float,
                  verbose: bool) -> Viewer:
    """The viewer of one splat set with its camera paths (:func:`serve`'s arguments)."""
    viser = _import_viser()
    g = gaussians.to("cpu")
    if len(g) == 0:
        raise ConfigError("the scene has no Gaussians to show")
    g, note = limit_splats(g, max_splats)
    if note and verbose:
        print(f"note: {note}")
    paths = _trajectories(cameras)
    up_vec = np.asarray(up, dtype=np.float64)
    up_vec = up_vec / max(np.linalg.norm(up_vec), 1e-12)

    with contextlib.redirect_stdout(io.StringIO()):  # viser's own banner; the caller prints the URL
        server = viser.ViserServer(host=host, port=port, label="lyra", verbose=False)
    if verbose and port and server.get_port() != port:
        print(f"note: port {port} is busy; using {server.get_port()}")
    server.scene.set_up_direction(up_vec)
    splats = server.scene.add_gaussian_splats("/splats", **splat_arrays(g))
    center, extent = _scene_extent(g.means)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    viewer = Viewer(server=server, url=f"http://{shown_host}:{server.get_port()}/", num_splats=len(g),
                    trajectories=paths, up=up_vec, splats=splats, max_splats=max_splats)

    # Initial view: the first trajectory camera, or from the input-camera side of the median centre.
    if paths:
        first = viewer.camera_view(next(iter(paths)), 0)
        server.initial_camera.position = first["position"]
        server.initial_camera.look_at = first["look_at"]
        server.initial_camera.fov = first["fov"]
    else:
        back = np.cross([1.0, 0.0, 0.0], up_vec)  # -z for a -y up: the input camera's side
        if np.linalg.norm(back) < 1e-6:  # up along ±x
            back = np.cross([0.0, 1.0, 0.0], up_vec)
        back = back / np.linalg.norm(back)
        server.initial_camera.position = center + 2.5 * extent * back + 0.5 * extent * up_vec
        server.initial_camera.look_at = center

    scale = frustum_scale if frustum_scale is not None else 0.05 * extent
    for name, cams in paths.items():
        wxyz, pos = camera_poses(cams)
        fov, aspect = camera_fov_aspect(cams)
        viewer._frustums[name] = [
            server.scene.add_camera_frustum(
                f"/cameras/{name.replace('/', '_')}/{i:04d}", fov=float(fov[i]), aspect=float(aspect[i]),
                scale=scale, thickness=2.0, thickness_units="screen", color=FRUSTUM_COLOR,
                wxyz=wxyz[i], position=pos[i])
            for i in range(len(cams))
        ]
    if paths:
        _add_playback_gui(viewer, fps)
    return viewer


def _add_playback_gui(viewer: Viewer, fps: float) -> None:
    """Path dropdown, frame slider and play/pause; a daemon thread advances the slider."""
    gui = viewer.server.gui
    names = list(viewer.trajectories)
    dropdown = gui.add_dropdown("Trajectory", options=names, initial_value=names[0])
    slider = gui.add_slider("Frame", min=0, max=max(len(viewer.trajectories[names[0]]) - 1, 1), step=1,
                            initial_value=0)
    playing = gui.add_checkbox("Play", initial_value=False)
    view_button = gui.add_button("Look through camera")
    viewer.gui.update({"Trajectory": dropdown, "Frame": slider, "Play": playing, "Look through camera": view_button})

    def current() -> tuple[str, int]:
        name = dropdown.value
        return name, min(int(slider.value), len(viewer.trajectories[name]) - 1)

    @dropdown.on_update
    def _(_event) -> None:
        slider.max = max(len(viewer.trajectories[dropdown.value]) - 1, 1)
        slider.value = 0
        viewer.show_frame(*current())

    @slider.on_update
    def _(_event) -> None:
        viewer.show_frame(*current())

    @view_button.on_click
    def _(_event) -> None:
        viewer.show_frame(*current())

    def play_loop() -> None:
        period = 1.0 / max(fps, 0.1)
        while not viewer._stop.wait(period):
            if playing.value:
                name, i = current()
                slider.value = (i + 1) % len(viewer.trajectories[name])

    threading.Thread(target=play_loop, name="lyra-viewer-playback", daemon=True).start()


def _time_label(viewer: Viewer) -> str:
    assert viewer.scene4d is not None
    k = viewer.time_index
    return f"t = {float(viewer.scene4d.times[k]):.3f}  ({k + 1} of {len(viewer.scene4d)}, {viewer.num_splats:,} splats)"


def _add_time_gui(viewer: Viewer, fps: float, follow: bool) -> None:
    """Time slider, Play time, Time follows camera and the readout; a daemon thread steps the time when playing."""
    from lyra.scene import nearest_time_index

    scene = viewer.scene4d
    assert scene is not None
    gui = viewer.server.gui
    times = scene.times
    k = len(times)
    gaps = (times[1:] - times[:-1]) if k > 1 else torch.ones(1)
    step = max(1e-3, min(0.01, float(gaps.min()) / 2))
    slider = gui.add_slider("Time", min=0.0, max=1.0, step=step, initial_value=float(times[0]))
    playing = gui.add_checkbox("Play time", initial_value=False)
    readout = gui.add_text("Shown time", initial_value=_time_label(viewer), disabled=True)
    viewer.gui.update({"Time": slider, "Play time": playing, "Shown time": readout})

    @slider.on_update
    def _(_event) -> None:
        if viewer.show_time(nearest_time_index(times, float(slider.value))):
            readout.value = _time_label(viewer)

    if follow and "Frame" in viewer.gui:
        assert scene.camera_times is not None
        camera_times = scene.camera_times
        follows = gui.add_checkbox("Time follows camera", initial_value=True)
        viewer.gui["Time follows camera"] = follows

        @viewer.gui["Frame"].on_update
        def _(_event) -> None:
            if follows.value:
                f = min(int(viewer.gui["Frame"].value), len(camera_times) - 1)
                slider.value = float(camera_times[f])

    def play_loop() -> None:
        period = 1.0 / max(fps, 0.1)
        while not viewer._stop.wait(period):
            if playing.value and k > 1:
                slider.value = float(times[(viewer.time_index + 1) % k])

    threading.Thread(target=play_loop, name="lyra-viewer-time", daemon=True).start()


def serve_forever(viewer: Viewer) -> None:
    """Block until Ctrl-C (KeyboardInterrupt propagates after the server is stopped)."""
    try:
        while True:
            time.sleep(3600)
    finally:
        viewer.stop()


__all__ = ["CURRENT_COLOR", "FRUSTUM_COLOR", "Viewer", "camera_fov_aspect", "camera_poses", "limit_splats", "serve",
           "serve_forever", "splat_arrays"]
