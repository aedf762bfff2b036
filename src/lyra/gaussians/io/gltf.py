"""Binary glTF (``.glb``) with the Khronos ``KHR_gaussian_splatting`` extension.

Written as the Khronos specification (extensions/2.0/Khronos/KHR_gaussian_splatting, Release Candidate,
kernel ``"ellipse"``) defines it:

* one mesh with one primitive of ``mode`` 0 (``POINTS``) carrying
  ``extensions.KHR_gaussian_splatting = {"kernel": "ellipse", "colorSpace": "srgb_rec709_display",
  "projection": "perspective", "sortingMethod": "cameraDistance"}``; ``"KHR_gaussian_splatting"`` is listed in
  ``extensionsUsed`` (the base extension is not put in ``extensionsRequired``: the specification reserves that for
  extensions built on it, and a reader without it falls back to a coloured point cloud);
* attributes, all float32: ``POSITION`` (VEC3, with the min/max glTF requires), ``KHR_gaussian_splatting:ROTATION``
  (VEC4 unit quaternion in glTF's **xyzw** order), ``KHR_gaussian_splatting:SCALE`` (VEC3, **linear** standard
  deviations), ``KHR_gaussian_splatting:OPACITY`` (SCALAR, **post-sigmoid** in [0, 1]),
  ``KHR_gaussian_splatting:SH_DEGREE_0_COEF_0`` (VEC3, the DC coefficient ``f_dc``: colour = 0.5 + 0.282095·f_dc)
  and, for SH degree d ≥ 1, every ``KHR_gaussian_splatting:SH_DEGREE_l_COEF_n`` for l = 1..d, n = 0..2l
  (n runs over m = −l..l, each an RGB triple, the basis with the Condon–Shortley phase: lyra's ``sh_rest`` order);
* the fallback ``COLOR_0`` (VEC4 unsigned byte normalized): the clamped diffuse colour decoded from sRGB to linear
  (as glTF's COLOR_0 is linear), alpha = opacity;
* one node (no transform) in one scene.

Axes: glTF is right-handed with +Y up (cameras look down −Z). lyra's Gaussians live in the OpenCV world (x right,
y down, z forward), so the writer rotates them 180° about x — ``(x, y, z) → (x, −y, −z)``, quaternions and SH
bands transformed exactly (sign flips) — and the reader rotates back: a round trip is exact. A lyra scene seen
from its input camera (origin, looking down +z) is seen in glTF from the origin looking down −Z, the default view
of three.js-style viewers.

Reading accepts what the specification allows: every listed component type of rotation (float, normalized
byte/short), scale (float, byte/short, normalized or not) and opacity (float, normalized ubyte/ushort),
interleaved buffer views (``byteStride``), several splat primitives (concatenated) and node transforms made of
rotation, uniform scale and translation (applied to means, rotations, scales and SH, as the specification says
renderers should). Sparse accessors, external buffers and non-uniform node scales raise a FormatError.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lyra.errors import FormatError
from lyra.gaussians.gaussians import SH_C0, Gaussians, quat_to_rotmat, rotmat_to_quat

EXTENSION = "KHR_gaussian_splatting"
PREFIX = EXTENSION + ":"
GLB_MAGIC = 0x46546C67  # b"glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
#: lyra (OpenCV: x right, y down, z forward) → glTF (x right, y up, z backward): a 180° rotation about x.
OPENCV_TO_GLTF = np.diag([1.0, -1.0, -1.0])

_COMPONENTS = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def sh_attribute_names(degree: int) -> list[str]:
    """The SH attribute semantics of degrees 1..``degree`` in lyra's ``sh_rest`` order (K = (d+1)²−1 names)."""
    return [f"{PREFIX}SH_DEGREE_{l}_COEF_{n}" for l in range(1, degree + 1) for n in range(2 * l + 1)]


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _to_gltf(g: Gaussians) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """means, quats (wxyz), sh_rest of ``g`` expressed in glTF axes (exact sign flips)."""
    from lyra.gaussians.io.spz import convert_coordinates

    sh = None if g.sh_rest is None or g.sh_rest.shape[1] == 0 else g.sh_rest.numpy()
    return convert_coordinates(g.means.numpy(), g.quats.numpy(), sh, OPENCV_TO_GLTF)


def write_glb(g: Gaussians, path: str | Path) -> None:
    """Write Gaussians (validated, on the CPU) as a ``.glb`` with ``KHR_gaussian_splatting`` (see module doc)."""
    n = len(g)
    if n == 0:
        raise FormatError("a .glb splat file needs at least one Gaussian (glTF accessors cannot be empty)")
    means, quats, sh_rest = _to_gltf(g)
    degree = g.sh_degree
    dc = ((g.colors.numpy().astype(np.float64) - 0.5) / SH_C0).astype(np.float32)
    base = np.clip(g.colors.numpy().astype(np.float64), 0.0, 1.0)
    color0 = np.empty((n, 4), dtype=np.uint8)
    color0[:, :3] = np.round(_srgb_to_linear(base) * 255.0).astype(np.uint8)
    color0[:, 3] = np.round(np.clip(g.opacities.numpy(), 0.0, 1.0) * 255.0).astype(np.uint8)
    columns: list[tuple[str, np.ndarray, str, int, bool]] = [
        ("POSITION", means.astype(np.float32), "VEC3", 5126, False),
        ("COLOR_0", color0, "VEC4", 5121, True),
        (PREFIX + "SCALE", g.scales.numpy().astype(np.float32), "VEC3", 5126, False),
        (PREFIX + "ROTATION", quats[:, [1, 2, 3, 0]].astype(np.float32), "VEC4", 5126, False),
        (PREFIX + "OPACITY", g.opacities.numpy().astype(np.float32), "SCALAR", 5126, False),
        (PREFIX + "SH_DEGREE_0_COEF_0", dc, "VEC3", 5126, False),
    ]
    if degree:
        for k, name in enumerate(sh_attribute_names(degree)):
            columns.append((name, np.ascontiguousarray(sh_rest[:, k, :], dtype=np.float32), "VEC3", 5126, False))
    blob = bytearray()
    views, accessors, attributes = [], [], {}
    for i, (name, data, kind, ctype, normalized) in enumerate(columns):
        raw = np.ascontiguousarray(data).tobytes()
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(raw), "target": 34962})
        blob += raw
        blob += b"\0" * (-len(blob) % 4)
        acc: dict[str, Any] = {"bufferView": i, "componentType": ctype, "count": n, "type": kind}
        if normalized:
            acc["normalized"] = True
        if name == "POSITION":
            acc["min"] = [float(v) for v in data.min(0)]
            acc["max"] = [float(v) for v in data.max(0)]
        accessors.append(acc)
        attributes[name] = i
    doc = {
        "asset": {"version": "2.0", "generator": "lyra (KHR_gaussian_splatting writer)"},
        "extensionsUsed": [EXTENSION],
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "gaussians"}],
        "meshes": [{"name": "gaussians", "primitives": [{
            "attributes": attributes, "mode": 0,
            "extensions": {EXTENSION: {"kernel": "ellipse", "colorSpace": "srgb_rec709_display",
                                       "projection": "perspective", "sortingMethod": "cameraDistance"}},
        }]}],
        "buffers": [{"byteLength": len(blob)}],
        "bufferViews": views,
        "accessors": accessors,
    }
    write_glb_document(doc, bytes(blob), path)


def write_glb_document(doc: dict, blob: bytes, path: str | Path) -> None:
    """Write a glTF JSON document and its binary buffer as one GLB file (JSON chunk padded with spaces, BIN chunk
    with zeros, both to 4 bytes)."""
    js = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    js += b" " * (-len(js) % 4)
    blob = blob + b"\0" * (-len(blob) % 4)
    total = 12 + 8 + len(js) + (8 + len(blob) if blob else 0)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<III", GLB_MAGIC, 2, total))
        fh.write(struct.pack("<II", len(js), CHUNK_JSON))
        fh.write(js)
        if blob:
            fh.write(struct.pack("<II", len(blob), CHUNK_BIN))
            fh.write(blob)


# ----------------------------------------------------------------------------------------------------- reading
def read_glb_document(path: str | Path) -> tuple[dict, bytes]:
    """The JSON document and BIN chunk (``b""`` if none) of a GLB file; FormatError on a malformed container."""
    data = Path(path).read_bytes()
    if len(data) < 20:
        raise FormatError(f"{path}: too short for a GLB file ({len(data)} bytes)")
    magic, version, length = struct.unpack_from("<III", data, 0)
    if magic != GLB_MAGIC:
        raise FormatError(f"{path}: not a binary glTF file (no 'glTF' magic); lyra reads .glb, not .gltf")
    if version != 2:
        raise FormatError(f"{path}: glTF container version {version}; only version 2 is supported")
    if length > len(data):
        raise FormatError(f"{path}: truncated GLB ({len(data)} bytes, header says {length})")
    pos, doc, blob = 12, None, b""
    while pos + 8 <= length:
        clen, ctype = struct.unpack_from("<II", data, pos)
        if pos + 8 + clen > length:
            raise FormatError(f"{path}: truncated GLB chunk at byte {pos}")
        chunk = data[pos + 8: pos + 8 + clen]
        if ctype == CHUNK_JSON and doc is None:
            try:
                doc = json.loads(chunk.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise FormatError(f"{path}: the GLB's JSON chunk is not valid JSON ({e})") from None
        elif ctype == CHUNK_BIN and not blob:
            blob = chunk
        pos += 8 + clen
    if not isinstance(doc, dict):
        raise FormatError(f"{path}: the GLB has no JSON chunk")
    return doc, blob


def _accessor(doc: dict, blob: bytes, index: Any, path: Path, what: str) -> np.ndarray:
    """Accessor ``index`` as float64 ``[count, width]``, normalized integers mapped as glTF specifies."""
    try:
        acc = doc["accessors"][index]
        kind, ctype, count = acc["type"], acc["componentType"], int(acc["count"])
    except (KeyError, IndexError, TypeError, ValueError):
        raise FormatError(f"{path}: {what}: accessor {index!r} is missing or malformed") from None
    if "sparse" in acc:
        raise FormatError(f"{path}: {what}: sparse accessors are not supported")
    if kind not in _WIDTH or ctype not in _COMPONENTS:
        raise FormatError(f"{path}: {what}: unsupported accessor type {kind}/{ctype}")
    width, dtype = _WIDTH[kind], np.dtype(_COMPONENTS[ctype]).newbyteorder("<")
    if "bufferView" not in acc:
        out = np.zeros((count, width))
    else:
        try:
            view = doc["bufferViews"][acc["bufferView"]]
            buf = doc["buffers"][view.get("buffer", 0)]
        except (KeyError, IndexError, TypeError):
            raise FormatError(f"{path}: {what}: its buffer view is missing") from None
        if "uri" in buf or view.get("buffer", 0) != 0:
            raise FormatError(f"{path}: {what}: external buffers are not supported (a .glb keeps its data inside)")
        start = int(view.get("byteOffset", 0)) + int(acc.get("byteOffset", 0))
        elem = dtype.itemsize * width
        stride = int(view.get("byteStride", 0)) or elem
        end = start + (count - 1) * stride + elem if count else start
        if end > int(view.get("byteOffset", 0)) + int(view["byteLength"]) or end > len(blob):
            raise FormatError(f"{path}: {what}: accessor reaches past the end of its buffer")
        raw = np.frombuffer(blob, dtype=np.uint8, count=end - start, offset=start) if count else np.zeros(0, np.uint8)
        if stride == elem:
            out = raw.view(dtype).reshape(count, width).astype(np.float64)
        else:
            rows = np.lib.stride_tricks.as_strided(raw, shape=(count, elem), strides=(stride, 1))
            out = np.ascontiguousarray(rows).view(dtype).reshape(count, width).astype(np.float64)
    if acc.get("normalized") and ctype != 5126:
        info = np.iinfo(_COMPONENTS[ctype])
        out = np.maximum(out / info.max, -1.0) if info.min < 0 else out / info.max
    return out


def _node_matrix(node: dict) -> np.ndarray:
    if "matrix" in node:
        return np.asarray(node["matrix"], dtype=np.float64).reshape(4, 4).T  # column-major in glTF
    t = np.asarray(node.get("translation", [0, 0, 0]), dtype=np.float64)
    x, y, z, w = np.asarray(node.get("rotation", [0, 0, 0, 1]), dtype=np.float64)
    s = np.asarray(node.get("scale", [1, 1, 1]), dtype=np.float64)
    R = quat_to_rotmat(torch.tensor([w, x, y, z], dtype=torch.float64)).numpy()
    M = np.eye(4)
    M[:3, :3] = R * s[None, :]
    M[:3, 3] = t
    return M


def _mesh_instances(doc: dict) -> list[tuple[int, np.ndarray]]:
    """(mesh index, global 4×4 transform) of every node instantiating a mesh in the default scene (all nodes
    when there are no scenes); a mesh no node uses is returned once with the identity."""
    nodes = doc.get("nodes", [])
    scenes = doc.get("scenes", [])
    if scenes:
        roots = scenes[int(doc.get("scene", 0))].get("nodes", []) if int(doc.get("scene", 0)) < len(scenes) else []
    else:
        children = {c for nd in nodes for c in nd.get("children", [])}
        roots = [i for i in range(len(nodes)) if i not in children]
    out: list[tuple[int, np.ndarray]] = []
    stack = [(int(r), np.eye(4), 0) for r in roots]
    while stack:
        i, parent, depth = stack.pop()
        if depth > 64 or not 0 <= i < len(nodes):
            raise FormatError("glTF node hierarchy is malformed (bad index or deeper than 64)")
        M = parent @ _node_matrix(nodes[i])
        if "mesh" in nodes[i]:
            out.append((int(nodes[i]["mesh"]), M))
        stack += [(int(c), M, depth + 1) for c in nodes[i].get("children", [])]
    used = {m for m, _ in out}
    out += [(m, np.eye(4)) for m in range(len(doc.get("meshes", []))) if m not in used]
    return out


def _primitive_gaussians(doc: dict, blob: bytes, prim: dict, M: np.ndarray, path: Path) -> Gaussians:
    from lyra.gaussians.io.spz import sh_transform

    attrs = prim.get("attributes", {})
    for need in ("POSITION", PREFIX + "ROTATION", PREFIX + "SCALE", PREFIX + "OPACITY", PREFIX + "SH_DEGREE_0_COEF_0"):
        if need not in attrs:
            raise FormatError(f"{path}: the {EXTENSION} primitive lacks the required attribute {need}")
    means = _accessor(doc, blob, attrs["POSITION"], path, "POSITION")[:, :3]
    xyzw = _accessor(doc, blob, attrs[PREFIX + "ROTATION"], path, "ROTATION")[:, :4]
    scales = _accessor(doc, blob, attrs[PREFIX + "SCALE"], path, "SCALE")[:, :3]
    opac = _accessor(doc, blob, attrs[PREFIX + "OPACITY"], path, "OPACITY")[:, 0]
    dc = _accessor(doc, blob, attrs[PREFIX + "SH_DEGREE_0_COEF_0"], path, "SH_DEGREE_0_COEF_0")[:, :3]
    degree = 0
    while all(f"{PREFIX}SH_DEGREE_{degree + 1}_COEF_{n}" in attrs for n in range(2 * degree + 3)):
        degree += 1
    if degree < 3 and any(f"{PREFIX}SH_DEGREE_{degree + 1}_COEF_{n}" in attrs for n in range(2 * degree + 3)):
        raise FormatError(f"{path}: SH degree {degree + 1} is only partly defined (the specification forbids it)")
    n = len(means)
    for name, arr in (("ROTATION", xyzw), ("SCALE", scales), ("OPACITY", opac), ("SH_DEGREE_0_COEF_0", dc)):
        if len(arr) != n:
            raise FormatError(f"{path}: {name} has {len(arr)} values for {n} positions")
    sh = None
    if degree:
        sh = np.stack([_accessor(doc, blob, attrs[a], path, a)[:, :3] for a in sh_attribute_names(degree)], 1)
        if sh.shape[0] != n:
            raise FormatError(f"{path}: SH attributes have {sh.shape[0]} values for {n} positions")
    if np.any(opac < 0) or np.any(opac > 1):
        raise FormatError(f"{path}: OPACITY outside [0, 1] (the specification stores post-sigmoid opacity)")
    if np.any(scales < 0):
        raise FormatError(f"{path}: negative SCALE values (the specification stores linear scales, >= 0)")
    quats = xyzw[:, [3, 0, 1, 2]]
    norms = np.linalg.norm(quats, axis=1, keepdims=True)
    quats = quats / np.where(norms > 0, norms, 1.0)
    # node transform, then glTF axes → lyra's OpenCV axes
    A = M[:3, :3]
    s = abs(np.linalg.det(A)) ** (1 / 3)
    if s <= 0 or not np.allclose((A / s) @ (A / s).T, np.eye(3), atol=1e-5) or np.linalg.det(A) < 0:
        raise FormatError(f"{path}: a node transform with non-uniform scale, shear or reflection is not supported")
    R = OPENCV_TO_GLTF.T @ (A / s)
    means = means @ (OPENCV_TO_GLTF.T @ A).T + OPENCV_TO_GLTF.T @ M[:3, 3]
    f = np.diag(R)
    if np.array_equal(R, np.diag(f)) and np.all(np.abs(f) == 1):
        # an axis flip (the usual case: no node transform): exact sign changes, the inverse of the writer's
        quats = quats * np.array([1, f[1] * f[2], f[0] * f[2], f[0] * f[1]])
    else:
        from lyra.gaussians.io.spz import _quat_mul

        quats = _quat_mul(rotmat_to_quat(torch.from_numpy(R)).numpy()[None], quats)
    scales = scales * s
    if sh is not None:
        D = sh_transform(R, degree)
        sh = np.einsum("kj,njc->nkc", D, sh)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    return Gaussians(means=t(means), quats=torch.nn.functional.normalize(t(quats), dim=-1),
                     scales=t(np.maximum(scales, 1e-12)), opacities=t(opac), colors=t(dc * SH_C0 + 0.5),
                     sh_rest=None if sh is None else t(sh))


def read_glb(path: str | Path) -> Gaussians:
    """Read every ``KHR_gaussian_splatting`` primitive of a ``.glb`` into lyra's OpenCV world (see module doc)."""
    path = Path(path)
    doc, blob = read_glb_document(path)
    parts = []
    meshes = doc.get("meshes", [])
    for mesh_index, M in _mesh_instances(doc):
        if not 0 <= mesh_index < len(meshes):
            raise FormatError(f"{path}: a node names mesh {mesh_index}, which does not exist")
        for prim in meshes[mesh_index].get("primitives", []):
            ext = prim.get("extensions", {}).get(EXTENSION)
            if ext is None:
                continue
            kernel = ext.get("kernel", "ellipse")
            if kernel != "ellipse":
                raise FormatError(f"{path}: {EXTENSION} kernel {kernel!r} is not supported (only 'ellipse')")
            parts.append(_primitive_gaussians(doc, blob, prim, M, path))
    if not parts:
        raise FormatError(f"{path}: no mesh primitive uses {EXTENSION}; not a Gaussian-splat glTF "
                          "(a mesh .glb is opened with trimesh, not as splats)")
    degrees = {p.sh_degree for p in parts}
    if len(degrees) > 1:
        keep = min(degrees)
        parts = [p if p.sh_degree == keep else _drop_sh(p, keep) for p in parts]
    return parts[0] if len(parts) == 1 else Gaussians.cat(parts)


def _drop_sh(g: Gaussians, degree: int) -> Gaussians:
    from dataclasses import replace

    k = (degree + 1) ** 2 - 1
    return replace(g, sh_rest=None if k == 0 else g.sh_rest[:, :k])


__all__ = ["EXTENSION", "OPENCV_TO_GLTF", "read_glb", "read_glb_document", "sh_attribute_names", "write_glb",
           "write_glb_document"]

