"""``lyra view FILE``: a live web viewer (viser) of a splat file and its camera path; ``lyra view DIR/`` for a 4D
scene folder (``lyra generate VIDEO -o DIR/``) adds a time slider."""

from __future__ import annotations

import argparse
import sys

from lyra.errors import ConfigError
from lyra.gaussians.io import load_gaussians
from lyra.geometry.trajectories import load_camera_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "view",
        help="open a splat file (or a 4D scene folder) in a live web viewer",
        description="Serve a web viewer (viser) of a Gaussian splat file: open the printed address in a "
        "browser. With --cameras, the path's cameras are drawn as frustums and the panel plays the path "
        "back (Trajectory, Frame, Play). A 4D scene folder (written by 'lyra generate VIDEO -o DIR/') shows its "
        "trajectories and adds Time (a slider over [0, 1]: the nearest stored time is shown), Play time and Time "
        "follows camera (moving along a trajectory also moves time, as in the generated videos). Stop with "
        "Ctrl-C. Needs the 'viser' package (pip install viser).",
        epilog="Examples:\n  lyra view scene.ply\n  lyra view scene.spz --cameras path.json --port 8081\n"
        "  lyra view scene4d/                                     # a 4D scene: time slider and play\n"
        "  lyra view big.ply --max-splats 500000 --host 0.0.0.0   # reachable from other machines",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="a splat file (.ply, .splat, .spz, .glb, .sog), or a 4D scene folder (with index.json)")
    p.add_argument("--cameras", metavar="PATH.json",
                   help="camera path to draw and play back (lyra's camera-path JSON or nerfstudio transforms.json)")
    p.add_argument("--mesh", metavar="MESH", default=None,
                   help="also show a mesh over the splats (.glb, .obj, .ply, .usd*; e.g. from lyra mesh), with "
                   "'Show mesh' / 'Show splats' toggles")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: all)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--max-splats", type=int, default=2_000_000, metavar="N",
                   help="show at most N Gaussians, the most opaque ones (default 2000000; 0 = all; per time for 4D)")
    p.add_argument("--up", default="-y", choices=("-y", "+y", "-z", "+z"),
                   help="world direction shown up (default -y: OpenCV worlds, as lyra writes them)")
    p.set_defaults(func=run)


def _is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::", "[::]")


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _network_addresses() -> list[str]:
    """This machine's addresses others may reach it at (primary route first; no packet is sent)."""
    import socket

    found: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: picks the outgoing interface, sends nothing
            found.append(s.getsockname()[0])
    except OSError:
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            addr = str(info[4][0])
            if addr not in found:
                found.append(addr)
    except OSError:
        pass
    return [a for a in found if a != "0.0.0.0"] or [socket.gethostname()]


UP = {"-y": (0.0, -1.0, 0.0), "+y": (0.0, 1.0, 0.0), "-z": (0.0, 0.0, -1.0), "+z": (0.0, 0.0, 1.0)}


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lyra.viewer.app import serve, serve_forever

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must lie in 0..65535, got {args.port}")
    if args.max_splats < 0:
        raise ConfigError(f"--max-splats must be ≥ 0, got {args.max_splats}")
    scene4d = None
    if Path(args.file).is_dir():
        from lyra.scene import DynamicScene

        scene4d = DynamicScene.load(args.file, lazy=True)  # each time read when shown (two kept in memory)
    else:
        g = load_gaussians(args.file)
    cameras = load_camera_path(args.cameras) if args.cameras else None
    mesh = None
    if args.mesh:
        from lyra.viewer.mesh_layer import load_mesh_file

        mesh = load_mesh_file(args.mesh)
    try:
        viewer = serve(g if scene4d is None else scene4d, cameras, host=args.host, port=args.port,
                       max_splats=args.max_splats or None, up=UP[args.up])
    except OSError as e:
        raise ConfigError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e}); try another --port") \
            from None
    if mesh is not None:
        from lyra.viewer.mesh_layer import add_mesh_layer

        add_mesh_layer(viewer, mesh)
    n_cams = sum(len(c) for c in viewer.trajectories.values())
    extra = f" and {n_cams} cameras" if n_cams else ""
    what = f"{viewer.num_splats:,} Gaussians" if scene4d is None else (
        f"4D scene of {len(scene4d)} times ({viewer.num_splats:,} Gaussians at t = 0)")
    url = viewer.url
    if not _is_loopback(args.host):
        port = url.rstrip("/").rsplit(":", 1)[-1]
        shown = [h for h in _network_addresses() if not _is_loopback(h)] if _is_wildcard(args.host) else [args.host]
        url = f"http://{_bracket(shown[0]) if shown else args.host}:{port}/"
        others = "".join(f", http://{_bracket(h)}:{port}/" for h in shown[1:4])
        where = "every network interface" if _is_wildcard(args.host) else args.host
        print(f"lyra view: warning: serving on {where} (--host {args.host}): anyone who can reach this machine on "
              f"port {port} can see the scene{' (also ' + others[2:] + ')' if others else ''}", file=sys.stderr,
              flush=True)
    print(f"lyra view: {what}{extra} at {url}  (Ctrl-C to stop)", flush=True)
    try:
        serve_forever(viewer)
    except KeyboardInterrupt:
        print("lyra view: stopped", flush=True)
    return 0
